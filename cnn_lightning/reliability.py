"""Crash safety: atomic checkpoint files, a last checkpoint every N steps, a clean stop on SIGINT/SIGTERM,
and checks that a checkpoint is readable and belongs to the model before Lightning loads it."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

TMP_MARK = ".tmp-"
_stop_signal = {"signum": signal.SIGTERM}  # what ended a run stopped through Lightning's SIGTERM path


def interrupt_exit_code() -> int:
    """Shell convention for a run stopped by a signal: 130 after Ctrl+C, 143 after SIGTERM."""
    return 128 + int(_stop_signal["signum"])


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file in the target folder, fsync, then rename over the target.

    A kill at any instant leaves either the previous checkpoint or the new one, never a truncated file
    (Lightning's own save writes the target in place). Remote (fsspec) paths keep Lightning's behaviour.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}")
        with open(temporary, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` keeping the best model by ``val/acc`` and ``last.ckpt``, which is also
    refreshed every ``last_every_n_steps`` optimizer steps and when the run is stopped by SIGTERM or Ctrl+C.

    Args:
        last_every_n_steps: refresh ``last.ckpt`` this often within an epoch (``None`` or 0: epoch ends only).
        monitor, mode, save_top_k, filename: as in ``ModelCheckpoint``, defaulting to the best ``val/acc``.
    """

    def __init__(
        self,
        last_every_n_steps: int | None = 100,
        monitor: str | None = "val/acc",
        mode: str = "max",
        save_top_k: int = 1,
        filename: str | None = "best-epoch={epoch}-step={step}-val_acc={val/acc:.4f}",
        auto_insert_metric_name: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs["save_last"] = True
        super().__init__(
            monitor=monitor,
            mode=mode,
            save_top_k=save_top_k,
            filename=filename,
            auto_insert_metric_name=auto_insert_metric_name,
            **kwargs,
        )
        self.last_every_n_steps = last_every_n_steps or 0
        self._last_saved_step = -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if trainer.is_global_zero and self.dirpath and Path(self.dirpath).is_dir():
            for stale in Path(self.dirpath).glob(f".*{TMP_MARK}*"):  # left by a kill during a save
                stale.unlink(missing_ok=True)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        step = trainer.global_step
        if self.last_every_n_steps and step % self.last_every_n_steps == 0 and step != self._last_saved_step:
            self._save_last(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.fast_dev_run:  # a smoke test leaves no checkpoint behind (Lightning saves last.ckpt here)
            super().on_train_end(trainer, pl_module)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING:
            return  # a crash or divergence keeps the last good checkpoint untouched
        if self._last_saved_step != trainer.global_step or not self.last_model_path:
            self._save_last(trainer)
        if not self.last_model_path:
            return
        run = Path(self.last_model_path).parent.parent
        rank_zero_info(
            f"\nStopped at epoch {trainer.current_epoch}, step {trainer.global_step}; saved {self.last_model_path}\n"
            f"Resume with: python -m cnn_lightning fit --ckpt_path {run}"
        )

    def _save_last(self, trainer: L.Trainer) -> None:
        """Write ``last.ckpt`` now through the trainer's public ``save_checkpoint`` (every rank calls it)."""
        if trainer.fast_dev_run or trainer.sanity_checking or not self.dirpath:
            return
        # Named as ModelCheckpoint names it, so its own epoch-end save overwrites this file instead of versioning.
        path = self.format_checkpoint_name({}, filename=self.CHECKPOINT_NAME_LAST)
        # Recorded before saving, as ModelCheckpoint does: the path is part of the saved state, and a resumed run
        # that did not know it would write its next last checkpoint to last-v1.ckpt beside this one.
        self.last_model_path, self._last_saved_step = path, trainer.global_step
        trainer.save_checkpoint(path, weights_only=self.save_weights_only)


class FiniteLossGuard:
    """Stops training when the loss becomes NaN or infinite, without a host synchronization per step on CUDA.

    On the CPU each loss is checked at once, before backward (a check costs nothing there). On CUDA a per-step
    ``bool(isfinite(loss))`` would make Python wait for the GPU every step, so each step's flag is copied to
    pinned memory without blocking and read once the GPU has got there, normally one or two steps later;
    ``flush`` waits for every pending flag and runs before each checkpoint is written and at each epoch end, so a
    checkpoint never holds weights that a non-finite step has updated.

    Args:
        on_divergence: called as ``on_divergence(loss, epoch, global_step, batch_idx)`` for the first
            non-finite loss seen; expected to raise.
        depth: flags in flight at most; a full ring waits for the oldest (bounds how late a divergence is caught).
    """

    def __init__(self, on_divergence: Any, depth: int = 4) -> None:
        self.on_divergence, self.depth = on_divergence, depth
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.cuda.Event, tuple[int, int, int]]] = []
        self._free: list[tuple[torch.Tensor, torch.Tensor]] = []

    def check(self, loss: torch.Tensor, batch_idx: int, *, epoch: int = 0, step: int = 0) -> None:
        where = (epoch, step, batch_idx)
        if loss.device.type != "cuda":
            value = loss.item()  # one read: torch.isfinite would launch an operator for a Python float's test
            if not math.isfinite(value):
                self.on_divergence(value, *where)
            return
        self._poll(wait_for_oldest=len(self._pending) >= self.depth)
        if self._free:
            flag, value = self._free.pop()
        else:
            flag, value = torch.empty((), dtype=torch.bool, pin_memory=True), torch.empty((), pin_memory=True)
        flag.copy_(torch.isfinite(loss.detach()), non_blocking=True)
        value.copy_(loss.detach(), non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending.append((flag, value, event, where))

    def flush(self) -> None:
        """Wait for every pending flag and raise through ``on_divergence`` if one was non-finite."""
        while self._pending:
            self._poll(wait_for_oldest=True)

    def _poll(self, *, wait_for_oldest: bool) -> None:
        while self._pending:
            flag, value, event, where = self._pending[0]
            if wait_for_oldest:
                event.synchronize()
                wait_for_oldest = False
            elif not event.query():
                return
            self._pending.pop(0)
            self._free.append((flag, value))
            if not bool(flag):
                self._pending.clear()
                self.on_divergence(value.item(), *where)


class GracefulInterrupt(L.Callback):
    """First Ctrl+C: stop after the current batch through Lightning's SIGTERM path (so ``RunCheckpoint``
    saves a consistent ``last.ckpt``); a second Ctrl+C aborts at once."""

    def __init__(self) -> None:
        self._previous: Any = None
        self.received: int | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        try:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread: leave Ctrl+C to Lightning
            self._previous = None

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = _stop_signal["signum"] = signum
        print("\nCtrl+C: stopping after this batch and saving last.ckpt (press again to abort).", flush=True)
        signal.raise_signal(signal.SIGTERM)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
