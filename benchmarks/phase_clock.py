"""Where a fit's wall time goes, for ``benchmarks/speedrun.py``: a callback it adds to the CLI's fit
(``--trainer.callbacks+=phase_clock.PhaseClock``) that writes, when the process's fit ends, the seconds from the
process's start (Linux's ``/proc``, so the interpreter's start-up and the imports count) to each phase's edges, and
each validation's accuracy with its time.

Phases: start-up (process start → the Trainer built: imports, the CLI, the model), data (the data module's
preparation and set-up, up to the callbacks' ``setup``), training steps (each training epoch without the validation
Lightning runs inside it), evaluation (the sanity check, every validation and the test) and the rest (checkpoints,
loggers, the summary, the exit).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from cnn_lightning.callbacks.stop_at_accuracy import process_start_time


class PhaseClock(Callback):
    """Seconds since the process started at each phase's edges, written as JSON to ``path`` at the test's end.

    Args:
        path: where the JSON goes.
        monitor: the accuracy read after each validation.
    """

    def __init__(self, path: str, monitor: str = "val/acc") -> None:
        self.path, self.monitor = Path(path), monitor
        self.start = process_start_time()
        self.record: dict[str, Any] = {"trainer_built": self._now(), "training": [], "evaluation": [], "curve": []}
        self._opened: dict[str, float] = {}

    def _now(self) -> float:
        return time.time() - self.start

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.record.setdefault("data_ready", self._now())

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._opened["training"] = self._now()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record["training"].append([self._opened.pop("training"), self._now()])

    def _open_evaluation(self, *_: Any) -> None:
        self._opened["evaluation"] = self._now()

    def _close_evaluation(self) -> None:
        self.record["evaluation"].append([self._opened.pop("evaluation"), self._now()])

    on_validation_start = on_test_start = _open_evaluation

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close_evaluation()
        if not trainer.sanity_checking and self.monitor in trainer.callback_metrics:
            accuracy = float(trainer.callback_metrics[self.monitor])
            self.record["curve"].append([trainer.current_epoch + 1, self._now(), accuracy])

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close_evaluation()
        self.record["test_acc"] = float(trainer.callback_metrics.get("test/acc", float("nan")))
        self.record["test_end"] = self._now()
        self.path.write_text(json.dumps(self.record))
