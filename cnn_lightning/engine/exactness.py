"""When a fit may run several optimizer steps per Lightning batch without anyone seeing a difference, and why not.

Lightning's loop calls its per-batch hooks (``on_train_batch_start/end``, the batch-transfer hooks) once per batch it
fetches, and its per-step hooks (zero_grad, backward, the optimizer step, gradient clipping, the schedulers) once per
optimizer step. Given a chunk of K batches, the engine calls the model's own ``training_step`` and the two transfer
hooks it can (``transfer_batch_to_device``, ``on_after_batch_transfer``) for each batch, and the rest once per chunk.
So the engine runs only where every other per-batch or per-step hook is Lightning's own no-op, or belongs to a
callback that reads the step counters rather than the batch (it declares ``handles_chunks``, as the project's own
callbacks do, or is one of Lightning's listed below); anywhere else Lightning's loop runs, and the reason is the hook
that would see the difference, by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator, MPSAccelerator
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, WeightAveraging
from lightning.pytorch.profilers import PassThroughProfiler

from cnn_lightning.lightning_contract import checkpoint_step_interval
from cnn_lightning.training.classifier import Classifier
from cnn_lightning.training.precision import only_autocasts

# The callback hooks Lightning's automatic optimization calls once per training batch or optimizer step.
PER_STEP_CALLBACK_HOOKS = (
    "on_train_batch_start",
    "on_before_zero_grad",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_train_batch_end",
)
# The model's, in the order Lightning calls them (transfer_batch_to_device and on_after_batch_transfer are absent:
# the engine calls them for every batch of a chunk, as Lightning would).
PER_STEP_MODEL_HOOKS = (
    "on_before_batch_transfer",
    "on_train_batch_start",
    "training_step",
    "on_before_zero_grad",
    "optimizer_zero_grad",
    "on_before_backward",
    "backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "configure_gradient_clipping",
    "optimizer_step",
    "lr_scheduler_step",
    "on_train_batch_end",
)
PER_STEP_DATAMODULE_HOOKS = ("on_before_batch_transfer",)
# Lightning's callbacks whose per-batch hooks read only the step counters (checkpoints every N steps: chunks end on
# multiples of N), or that the engine calls at every step itself (weight averaging), under a condition.
STEP_COUNTING_CALLBACKS: dict[type, Callable[[Any], bool]] = {
    ModelCheckpoint: lambda callback: True,
    WeightAveraging: lambda callback: True,
    LearningRateMonitor: lambda callback: callback.logging_interval != "step",
}


def one_device(accelerator: Any, devices: Any, num_nodes: int) -> bool:
    """Whether Lightning runs a fit with these Trainer arguments on one device of this machine (where the engine
    applies; on several, Lightning's ``auto`` strategy is DDP). Devices Lightning would refuse count as one: the
    Trainer then says what is wrong with them."""
    wanted = accelerator if isinstance(accelerator, str) else type(accelerator).__name__.lower()
    kinds = [kind for kind in (CUDAAccelerator, MPSAccelerator) if kind.is_available()] + [CPUAccelerator]
    if wanted != "auto":
        kinds = [
            kind for kind in kinds if wanted in kind.__name__.lower() or (wanted == "gpu" and kind is CUDAAccelerator)
        ]
    if num_nodes != 1 or not kinds:  # several machines, or an accelerator of another kind (TPU) or not here
        return False
    try:
        devices = kinds[0].auto_device_count() if devices == "auto" else kinds[0].parse_devices(devices)
        return len(kinds[0].get_parallel_devices(devices)) == 1
    except Exception:  # Lightning's own check names the bad value
        return True


def overrides(owner: object, hook: str, base: type) -> bool:
    """Whether ``owner`` runs a ``hook`` of its own rather than ``base``'s: defined by its class below ``base``, or set
    on the instance (a recorder, a mock, a patched method)."""
    return hook in vars(owner) or getattr(type(owner), hook) is not getattr(base, hook)


def trusted_base(callback: Callback) -> type:
    """The class whose per-batch hooks are known to take a chunk as the batches it trained: the first in the
    callback's ancestry that declares ``handles_chunks`` (and, on this instance, says true) or is listed in
    :data:`STEP_COUNTING_CALLBACKS` (and its condition holds); else ``Callback``, whose hooks do nothing."""
    for cls in type(callback).__mro__:
        if "handles_chunks" in vars(cls):
            return cls if callback.handles_chunks else Callback
        if cls in STEP_COUNTING_CALLBACKS:
            return cls if STEP_COUNTING_CALLBACKS[cls](callback) else Callback
    return Callback


def hook_seeing_batches(trainer: L.Trainer) -> str | None:
    """``"<Owner>.<hook>"`` for the first per-batch or per-step hook that Lightning's loop would call differently
    with chunks (the model's, the data module's, a callback's), or ``None``."""
    model = trainer.lightning_module
    for hook in PER_STEP_MODEL_HOOKS:
        if overrides(model, hook, Classifier if hook == "training_step" else L.LightningModule):
            return f"{type(model).__name__}.{hook}"
    datamodule = trainer.datamodule
    for hook in PER_STEP_DATAMODULE_HOOKS if datamodule is not None else ():
        if overrides(datamodule, hook, L.LightningDataModule):
            return f"{type(datamodule).__name__}.{hook}"
    for callback in trainer.callbacks:
        base = trusted_base(callback)
        hook = next((hook for hook in PER_STEP_CALLBACK_HOOKS if overrides(callback, hook, base)), None)
        if hook:
            return f"{type(callback).__name__}.{hook}"
    return None


def direct_transfer(trainer: L.Trainer) -> Callable[[Any, int], Any] | None:
    """What Lightning's batch-transfer dispatch would call after its default move to the device, where the engine
    may call it directly: the data module's own ``on_after_batch_transfer``, or nothing (a batch passed as it is);
    ``None`` where the model or the data module moves batches its own way (Lightning's dispatch then)."""
    model, datamodule = trainer.lightning_module, trainer.datamodule
    moves = ("transfer_batch_to_device", "on_after_batch_transfer")
    if any(overrides(model, hook, L.LightningModule) for hook in moves) or (
        datamodule is not None and overrides(datamodule, moves[0], L.LightningDataModule)
    ):
        return None
    if datamodule is not None and overrides(datamodule, moves[1], L.LightningDataModule):
        return datamodule.on_after_batch_transfer
    return _as_moved


def _as_moved(batch: Any, dataloader_idx: int) -> Any:
    return batch


def why_not_chunked(trainer: L.Trainer) -> str | None:
    """Why this fit cannot run several optimizer steps per Lightning batch exactly, or ``None`` when it can."""
    model = trainer.lightning_module
    if not isinstance(model, Classifier):
        return f"{type(model).__name__} is not a cnn_lightning Classifier, whose training_step logs nothing per step"
    if hook := hook_seeing_batches(trainer):
        return f"{hook} is called once per batch or step, and would see a chunk"
    if trainer.accumulate_grad_batches != 1:
        return f"gradient accumulation (accumulate_grad_batches={trainer.accumulate_grad_batches}) steps per batches"
    if trainer.gradient_clip_val:
        return "gradient clipping (gradient_clip_val) runs in Lightning's optimizer step"
    if len(trainer.optimizers) != 1:
        return "more than one optimizer"
    if isinstance(trainer.optimizers[0], torch.optim.LBFGS):
        return "LBFGS evaluates the loss again through the closure of Lightning's automatic optimization"
    for config in trainer.lr_scheduler_configs:
        if config.reduce_on_plateau or config.frequency != 1:
            return f"the schedule {type(config.scheduler).__name__} steps on a monitored metric or every few batches"
    if not only_autocasts(trainer.precision_plugin):
        return f"precision {trainer.precision} (its plugin does more around a step than autocast)"
    if not isinstance(trainer.profiler, PassThroughProfiler):
        return f"the profiler {type(trainer.profiler).__name__} times every step"
    if trainer.val_check_interval != 1.0:
        return "validation within the epoch (val_check_interval) counts batches"
    if trainer.overfit_batches:
        return "overfit_batches"
    return None


def step_intervals(trainer: L.Trainer) -> set[int]:
    """The intervals in optimizer steps at which checkpoints are due (``RunCheckpoint.last_every_n_steps``,
    ``ModelCheckpoint(every_n_train_steps)``): a chunk's length must divide each, so that each falls on a chunk's
    end (chunks end on multiples of their length)."""
    intervals = {checkpoint_step_interval(callback) for callback in trainer.checkpoint_callbacks}
    intervals |= {int(getattr(callback, "last_every_n_steps", 0) or 0) for callback in trainer.checkpoint_callbacks}
    return intervals - {0}


def chunk_length(trainer: L.Trainer, requested: int) -> tuple[int, str | None]:
    """The optimizer steps each Lightning batch of this fit can run (at most ``requested``, dividing every checkpoint
    interval), and why it is 1 where ``requested`` asked for more."""
    if requested <= 1:
        return 1, None
    if reason := why_not_chunked(trainer):
        return 1, reason
    intervals = step_intervals(trainer)
    steps = max(k for k in range(1, requested + 1) if all(n % k == 0 for n in intervals))
    if steps == 1:
        return 1, f"no chunk of 2 to {requested} steps divides the checkpoint interval(s) {sorted(intervals)}"
    return steps, None
