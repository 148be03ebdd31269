"""``last.ckpt`` kept fresh: every N optimizer steps, at each epoch end and when the run is stopped, beside the best
checkpoint by validation accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from cnn_lightning.engine import passed_multiple
from cnn_lightning.training.checkpoint_io import TMP_MARK


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` keeping the best model by ``val/acc`` and ``last.ckpt``, which is also
    refreshed every ``last_every_n_steps`` optimizer steps and when the run is stopped by SIGTERM or Ctrl+C.

    Args:
        last_every_n_steps: refresh ``last.ckpt`` this often within an epoch (``None`` or 0: epoch ends only).
        monitor, mode, save_top_k, filename: as in ``ModelCheckpoint``, defaulting to the best ``val/acc``.
    """

    handles_chunks = True  # due every N optimizer steps, also when a chunk of steps passed N (cnn_lightning.engine)

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
        self._previous_step = 0  # global_step at the previous batch's end (a resumed run's step at its start)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if trainer.is_global_zero and self.dirpath and Path(self.dirpath).is_dir():
            for stale in Path(self.dirpath).glob(f".*{TMP_MARK}*"):  # left by a kill during a save
                stale.unlink(missing_ok=True)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        previous, self._previous_step = self._previous_step, trainer.global_step
        if passed_multiple(previous, trainer.global_step, self.last_every_n_steps):
            self._save_last(trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._previous_step = trainer.global_step

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
