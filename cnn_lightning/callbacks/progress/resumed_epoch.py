"""The progress bar's epoch after a mid-epoch resume, for whichever bar the run shows."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class ResumedEpochProgress(Callback):
    """Gives the progress bar its epoch after a mid-epoch resume: Lightning does not call ``on_train_epoch_start``
    for an epoch it resumes, so the bar would read ``Training: 91/?`` instead of ``Epoch 0: 91/215``."""

    handles_chunks = True  # it reads the epoch, which a chunk of steps (cnn_lightning.engine) never spans

    def __init__(self) -> None:
        self._started_epoch: int | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started_epoch = trainer.current_epoch

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._started_epoch != trainer.current_epoch:
            self._started_epoch = trainer.current_epoch
            if trainer.progress_bar_callback is not None:
                trainer.progress_bar_callback.on_train_epoch_start(trainer, pl_module)
