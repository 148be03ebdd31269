"""Stop a fit when its validation accuracy first reaches a target, and record how long the whole process took to
get there: what a student waits for, from pressing Enter (start-up, data preparation, validation and checkpoints
included), not the training step's examples per second.

Lightning's ``EarlyStopping`` with ``stopping_threshold`` does the stopping (checked after each validation, as
Lightning checks it; patience never runs out, so the target alone stops the run); this subclass adds the clock. The
CLI's ``fit`` then tests the weights it stopped with, and its closing line, TensorBoard's HParams and ``report`` show
the time and the epoch (``--stop_at.accuracy 0.9``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping

from cnn_lightning.errors import ConfigError

# Final metrics' names (HParams: verdict/…, report: the time column).
TARGET = "target_accuracy"
SECONDS_TO_TARGET = "seconds_to_target"
TARGET_EPOCH = "target_epoch"


def process_start_time() -> float:
    """When this process started, as a ``time.time()`` value: Linux's ``/proc`` (the kernel's start tick and boot
    time), so the interpreter's own start-up and the imports count; elsewhere, when this module was imported."""
    try:
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
        fields = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: starttime, in clock ticks
    except (OSError, ValueError, StopIteration):
        return _IMPORTED


_IMPORTED = time.time()


class StopAtAccuracy(EarlyStopping):
    """Stop training when validation accuracy first reaches ``accuracy`` (None: never).

    Args:
        accuracy: the target, e.g. 0.806 (the book's median test accuracy for LeNet).
        monitor: the metric compared with the target, as logged each validation.
    """

    def __init__(self, accuracy: float | None = None, monitor: str = "val/acc") -> None:
        if accuracy is not None and not 0.0 < accuracy <= 1.0:
            raise ConfigError(f"--stop_at.accuracy takes a fraction in (0, 1], got {accuracy}.")
        super().__init__(
            monitor=monitor,
            mode="max",
            stopping_threshold=accuracy,
            patience=sys.maxsize,  # only the target stops the run
            strict=accuracy is not None,
            check_on_train_epoch_end=False,
        )
        self.accuracy = accuracy
        self.seconds_to_target: float | None = None
        self.target_epoch: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.accuracy is None:
            return
        super().on_validation_end(trainer, pl_module)
        value = trainer.callback_metrics.get(self.monitor)
        reached = value is not None and float(value) >= self.accuracy
        if reached and self.seconds_to_target is None and not trainer.sanity_checking:
            self.seconds_to_target = time.time() - process_start_time()
            self.target_epoch = trainer.current_epoch + 1

    def final_metrics(self) -> dict[str, float]:
        """The target, and the time and epoch at which it was reached, for the closing line and HParams."""
        if self.accuracy is None:
            return {}
        if self.seconds_to_target is None:
            return {TARGET: self.accuracy}
        return {
            TARGET: self.accuracy,
            SECONDS_TO_TARGET: self.seconds_to_target,
            TARGET_EPOCH: float(self.target_epoch),
        }

    def state_dict(self) -> dict:
        return {**super().state_dict(), "seconds_to_target": self.seconds_to_target, "target_epoch": self.target_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        self.seconds_to_target = state.pop("seconds_to_target", None)
        self.target_epoch = state.pop("target_epoch", None)
        super().load_state_dict(state)
