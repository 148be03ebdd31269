"""Several optimizer steps per Lightning batch: the same arithmetic as one step per batch, with Lightning's per-batch
loop (fetch, hooks, logging, progress) paid once per chunk.

The data module delivers up to ``K`` consecutive mini-batches of the epoch as one batch (a chunk, sliced from the
same shuffled order); :func:`train_chunk` runs one optimizer step per mini-batch through Lightning's manual
optimization (``manual_backward`` and the ``LightningOptimizer``, so ``global_step`` advances per step), and
:func:`cnn_lightning.lightning_contract.count_chunk_as_steps` counts the chunk as its batches, so that everything a
user sets keeps its meaning per optimizer step: ``limit_train_batches``, ``max_steps`` (a chunk stops there), the
resume position, checkpoints every N steps (chunks end on multiples of ``K``, which divides N), per-step schedules
and warm-up, EMA (``WeightAveraging`` updated after every step), the divergence guard's step, Ctrl+C and SIGTERM
(the chunk stops after the current step). What cannot hold falls back to one step per batch, saying why
(:func:`why_not_chunked`).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from cnn_lightning.lightning_contract import (
    adopt_optimizer_steps,
    checkpoint_step_interval,
    count_chunk_as_steps,
    count_direct_steps,
)
from cnn_lightning.training.chunk_graph import ChunkGraph, why_not_graphed
from cnn_lightning.training.step_hooks import outside_autocast, plain_steps, schedulers_stepped_every

# Optimizer steps per Lightning batch when the model does not say: Lightning's per-batch tax falls as 1/K
# (docs/measurements.md, "Chunked steps"), and 25 divides the default intervals of logging (50) and of last.ckpt
# (100), so both fall on a chunk's end.
DEFAULT_STEPS_PER_BATCH = 25


def why_not_chunked(trainer: L.Trainer) -> str | None:
    """Why this fit cannot run several optimizer steps per batch exactly, or ``None`` when it can."""
    if not hasattr(trainer.datamodule, "mini_batches"):
        return "the data module delivers one batch at a time (it has no mini_batches)"
    if trainer.accumulate_grad_batches != 1:
        return f"gradient accumulation (accumulate_grad_batches={trainer.accumulate_grad_batches}) steps per batches"
    if trainer.gradient_clip_val:
        return "gradient clipping (gradient_clip_val) is Lightning's automatic optimization's"
    if len(trainer.optimizers) != 1:
        return "more than one optimizer"
    if isinstance(trainer.optimizers[0], torch.optim.LBFGS):
        return "LBFGS evaluates the loss again through the closure of Lightning's automatic optimization"
    if trainer.world_size > 1:
        return "several processes (DDP synchronizes gradients in its wrapper's forward, once per step)"
    for config in trainer.lr_scheduler_configs:
        if config.reduce_on_plateau or config.frequency != 1:
            return f"the schedule {type(config.scheduler).__name__} steps on a monitored metric or every few batches"
    if trainer.val_check_interval != 1.0:
        return "validation within the epoch (val_check_interval) counts batches"
    if trainer.overfit_batches:
        return "overfit_batches"
    bar = trainer.progress_bar_callback
    if bar is not None and not getattr(bar, "counts_chunked_steps", False):
        return f"the progress bar {type(bar).__name__} counts Lightning batches (the default bar counts steps)"
    return None


def passed_multiple(previous_step: int, step: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in ``(previous_step, step]``: something due every N optimizer steps is due
    at a batch's end even when a chunk of steps passed the multiple rather than ended on it (``every`` 0: never)."""
    return bool(every) and step // every > previous_step // every


def step_intervals(trainer: L.Trainer) -> set[int]:
    """The intervals in optimizer steps at which checkpoints are due (``RunCheckpoint.last_every_n_steps``,
    ``ModelCheckpoint(every_n_train_steps)``): a chunk's length must divide each, so that each falls on a chunk's
    end (the data module ends chunks on multiples of ``global_step``)."""
    intervals = {checkpoint_step_interval(callback) for callback in trainer.checkpoint_callbacks}
    intervals |= {int(getattr(callback, "last_every_n_steps", 0) or 0) for callback in trainer.checkpoint_callbacks}
    return intervals - {0}


def start_chunked_steps(model: L.LightningModule, requested: int | None) -> int:
    """At fit start (after the callbacks' own, so after AutoMicroBatch's search): the optimizer steps each training
    batch runs (1: Lightning's usual loop), set up for the run."""
    trainer = model.trainer
    steps = DEFAULT_STEPS_PER_BATCH if requested is None else requested
    if steps <= 1:
        return 1
    reason = why_not_chunked(trainer)
    intervals = step_intervals(trainer)
    fitting = max((k for k in range(1, steps + 1) if all(n % k == 0 for n in intervals)), default=1)
    if not reason and fitting == 1:
        reason = f"no chunk of 2 to {steps} steps divides the checkpoint interval(s) {sorted(intervals)}"
    steps = fitting
    if reason:
        rank_zero_info(f"Chunked steps off (one optimizer step per Lightning batch): {reason}.")
        return 1
    model.automatic_optimization = False
    trainer.datamodule.steps_per_batch = steps
    rank_zero_info(
        f"Chunked steps: {steps} optimizer steps per Lightning batch (--model.init_args.steps_per_batch 1: one)."
    )
    return steps


def resume_chunked_steps(model: L.LightningModule) -> None:
    """At train start, the run's state restored: a checkpoint of one step per batch counted its steps in automatic
    optimization, which manual optimization's ``global_step`` does not read; continue from them."""
    if not model.automatic_optimization:
        adopt_optimizer_steps(model.trainer)


def stop_chunked_steps(model: L.LightningModule) -> None:
    """At fit end: Lightning's usual loop again (a later fit decides afresh)."""
    model.chunk_graph = None  # its memory pool with it
    if not model.automatic_optimization:
        model.automatic_optimization = True
        model.trainer.datamodule.steps_per_batch = 1


def start_chunk_graph(model: Any, requested: bool) -> ChunkGraph | None:
    """At fit start, chunked steps decided: the chunks' CUDA graph (training/chunk_graph.py) when asked and it can
    replay them, else ``None`` and a line saying why not."""
    if not requested or model.steps_per_batch <= 1:
        if requested:
            rank_zero_info("CUDA graph off: it replays a chunk of steps, and chunked steps are off.")
        return None
    reason = why_not_graphed(model)
    if reason:
        rank_zero_info(f"CUDA graph off (chunks run eagerly): {reason}.")
        return None
    rank_zero_info(f"CUDA graph: each full chunk of {model.steps_per_batch} steps replays one capture.")
    return ChunkGraph(model, model.steps_per_batch)


def train_chunk(model: Any, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
    """A chunk of optimizer steps: replayed from its CUDA graph where the fit has one and the chunk is full,
    otherwise eagerly (:func:`train_eagerly`); then the per-epoch schedules after the epoch's last batch, as
    Lightning does when automatic, and the chunk counted as its batches."""
    trainer, graph = model.trainer, getattr(model, "chunk_graph", None)
    if graph is not None and graph.takes(batch[1]):
        done = graph.train(*batch[:2], batch_idx, eager=lambda: train_eagerly(model, batch, batch_idx))
    else:
        done = train_eagerly(model, batch, batch_idx)
    if batch_idx + done >= trainer.num_training_batches:
        for scheduler in schedulers_stepped_every(trainer, "epoch"):
            scheduler.step()
    count_chunk_as_steps(trainer, done - 1)


def train_eagerly(model: Any, batch: tuple[torch.Tensor, ...], batch_idx: int) -> int:
    """One optimizer step per mini-batch of the chunk, as Lightning's automatic optimization takes it: forward under
    the precision's autocast, backward outside it, ``zero_grad``, the step, per-step schedules, then EMA; returns
    the steps taken (fewer at ``max_steps`` or on SIGTERM). Through ``manual_backward`` and the
    ``LightningOptimizer``, or straight to torch where their per-step calls would all do nothing
    (training/step_hooks.py)."""
    trainer = model.trainer
    optimizer = model.optimizers()
    plain = plain_steps(model)
    per_step = schedulers_stepped_every(trainer, "step")
    averaging = [callback for callback in trainer.callbacks if isinstance(callback, WeightAveraging)]
    backward_context = outside_autocast(model.device.type)
    done = 0
    for images, labels in trainer.datamodule.mini_batches(*batch[:2]):
        if done and (trainer.received_sigterm or 0 <= trainer.max_steps <= trainer.global_step):
            break
        loss = model._shared_step((images, labels), "train")
        model.loss_guard.check(loss, batch_idx + done, epoch=model.current_epoch, step=model.global_step)
        optimizer.zero_grad(set_to_none=True)
        with backward_context:
            loss.backward() if plain else model.manual_backward(loss)
        if plain:
            optimizer.optimizer.step()
            count_direct_steps(trainer, 1)
        else:
            optimizer.step()
        for scheduler in per_step:
            scheduler.step()
        for callback in averaging:  # its own hook, per step: its next call at the batch's end finds nothing new
            callback.on_train_batch_end(trainer, model, None, None, batch_idx + done)
        done += 1
    return done
