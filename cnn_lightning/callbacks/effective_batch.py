"""The examples per optimizer step, printed and logged at fit start: micro-batch × accumulation × devices."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.parsing import lightning_getattr, lightning_hasattr


class EffectiveBatchSize(Callback):
    """Prints (rank 0, one line) and logs as hyperparameters the examples per optimizer step at fit start:
    micro-batch × ``accumulate_grad_batches`` × devices.

    Prints at ``on_train_start``, after every ``on_fit_start`` (``AutoMicroBatch`` searches there).
    """

    def __init__(self, batch_arg_name: str = "batch_size") -> None:
        self.batch_arg_name = batch_arg_name
        self.effective_batch_size: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not lightning_hasattr(pl_module, self.batch_arg_name):
            return
        micro, accumulation = lightning_getattr(pl_module, self.batch_arg_name), trainer.accumulate_grad_batches
        if not isinstance(accumulation, int):
            return  # a per-epoch schedule ({epoch: factor}) has no single effective batch
        self.effective_batch_size = micro * accumulation * trainer.world_size
        for logger in trainer.loggers:
            logger.log_hyperparams(
                {
                    "effective_batch_size": self.effective_batch_size,
                    "micro_batch_size": micro,
                    "accumulate_grad_batches": accumulation,
                }
            )
        if trainer.is_global_zero:
            devices = f"{trainer.world_size} device{'s' if trainer.world_size > 1 else ''}"
            print(
                f"Effective batch size {micro * accumulation * trainer.world_size} = micro-batch {micro} "
                f"× {accumulation} accumulated × {devices}",
                flush=True,
            )
