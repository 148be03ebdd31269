"""The learning rate logged once per epoch (or step), silently skipped when the run has no logger."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor


class LearningRateLogger(LearningRateMonitor):
    """``LearningRateMonitor`` that stays silent when the run has no logger (``--trainer.logger false``)."""

    @property
    def handles_chunks(self) -> bool:
        """Logging once per epoch, it sees the same whether an engine's Lightning batch holds one step or many."""
        return self.logging_interval != "step"

    def on_train_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_epoch_start(trainer, *args, **kwargs)
