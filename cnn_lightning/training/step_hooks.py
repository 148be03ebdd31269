"""What Lightning runs around every optimizer step of manual optimization, and when a chunk's steps may skip it.

``manual_backward`` and the ``LightningOptimizer``'s ``step`` call the callbacks' and the model's
``on_before_backward``, ``on_after_backward`` and ``on_before_optimizer_step`` (each through a loop over every
callback), the model's ``backward``, the precision plugin's scaling and the profiler: a cost per step as large as
Lightning's whole per-batch loop spread over a chunk (docs/measurements.md, "Per-step costs"). Where each of them
would do nothing (no such hook overridden, one device, a precision whose plugin only autocasts, no profiler), a step
goes straight to torch: the same ``loss.backward()`` and ``optimizer.step()``, counted in ``global_step`` through
the contract module. A replayed CUDA graph (training/chunk_graph.py) needs the same, since it cannot call them.
"""

from __future__ import annotations

import contextlib
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import SingleDeviceStrategy

# Lightning's calls to the model and the callbacks around each optimizer step of manual optimization.
PER_STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


def hook_run_per_step(model: L.LightningModule) -> str | None:
    """``"<owner> runs <hook>"`` for the first model or callback hook Lightning calls at every optimizer step that is
    overridden (and so may do something), or ``None``."""
    if type(model).backward is not L.LightningModule.backward:
        return f"{type(model).__name__} runs backward"
    for owner in [model, *model.trainer.callbacks]:
        base = L.LightningModule if owner is model else L.Callback
        hook = next((name for name in PER_STEP_HOOKS if getattr(type(owner), name) is not getattr(base, name)), None)
        if hook:
            return f"{type(owner).__name__} runs {hook}"
    return None


def plain_precision(trainer: L.Trainer) -> bool:
    """Whether the precision plugin does nothing around a step but autocast: ``32-true`` and ``bf16-mixed``, not a
    gradient scaler's ``16-mixed`` or a plugin of another kind."""
    plugin: Any = trainer.precision_plugin
    if type(plugin) is MixedPrecision:
        return plugin.scaler is None
    return type(plugin) is Precision


def plain_steps(model: L.LightningModule) -> bool:
    """Whether this fit's optimizer steps may skip Lightning's per-step calls: every one of them would do nothing
    (and no profiler asked for them: ``--trainer.profiler simple`` times each ``optimizer_step``)."""
    trainer = model.trainer
    quiet = isinstance(trainer.profiler, PassThroughProfiler)
    return (
        type(trainer.strategy) is SingleDeviceStrategy
        and quiet
        and plain_precision(trainer)
        and not hook_run_per_step(model)
    )


def outside_autocast(device: str) -> contextlib.AbstractContextManager:
    """Where a step's backward runs: outside the precision's autocast (inside which Lightning runs the training
    step), as Lightning's automatic optimization runs it. One reusable context, for every step of a chunk."""
    return torch.autocast(device, enabled=False) if torch.is_autocast_enabled(device) else contextlib.nullcontext()


def schedulers_stepped_every(trainer: L.Trainer, interval: str) -> list[Any]:
    """The learning-rate schedulers Lightning steps every ``"step"`` or every ``"epoch"``."""
    return [config.scheduler for config in trainer.lr_scheduler_configs if config.interval == interval]
