"""Callbacks every run gets: throughput in examples/sec and the book's closing line."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ThroughputMonitor
from lightning.pytorch.trainer.states import RunningStage

from cnn_lightning.batching import EffectiveBatchSize
from cnn_lightning.dashboards import Dashboards
from cnn_lightning.reliability import GracefulInterrupt


def batch_examples(batch: Any) -> int:
    """Examples in an ``(images, labels)`` batch."""
    return len(batch[1])


class ExamplesPerSecond(ThroughputMonitor):
    """Lightning's ``ThroughputMonitor`` (``train/samples_per_sec``, FLOPs and MFU when the model reports
    ``flops_per_batch``) that also keeps the whole fit's training rate for the closing summary.

    The rate is wall clock over training batches, data loading included, validation excluded.
    """

    def __init__(self, window_size: int = 50) -> None:
        super().__init__(batch_size_fn=batch_examples, window_size=window_size)

    @property
    def train_examples_per_sec(self) -> float | None:
        throughput = self._throughputs.get(RunningStage.TRAINING)
        if throughput is None or not throughput._time:
            return None
        elapsed = throughput._time[-1]
        return self._samples[RunningStage.TRAINING] / elapsed if elapsed > 0 else None


class LearningRateLogger(LearningRateMonitor):
    """``LearningRateMonitor`` that stays silent when the run has no logger (``--trainer.logger false``)."""

    def on_train_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_epoch_start(trainer, *args, **kwargs)


def final_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The run's final metrics (per-class accuracies stay in their own charts), plus ``examples_per_sec``:
    the whole fit's training rate over all devices."""
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if "class_acc" not in name}
    monitor = next((cb for cb in trainer.callbacks if isinstance(cb, ExamplesPerSecond)), None)
    if monitor is not None and monitor.train_examples_per_sec:
        # Measured on rank 0; every rank trains the same number of equal batches in the same time.
        metrics["examples_per_sec"] = monitor.train_examples_per_sec * trainer.world_size
    return metrics


def closing_line(metrics: dict[str, float], device: object) -> str:
    """The book's end-of-training printout: loss, train/val/test accuracy and examples/sec on the device."""
    parts = [f"{label} {metrics[key]:.3f}" for key, label in _CLOSING_FIELDS if key in metrics]
    if "examples_per_sec" in metrics:
        parts.append(f"{metrics['examples_per_sec']:,.1f} examples/sec on {device}")
    return ", ".join(parts)


_CLOSING_FIELDS = (("train/loss", "loss"), ("train/acc", "train acc"), ("val/acc", "val acc"), ("test/acc", "test acc"))


def default_callbacks() -> list[Callback]:
    """Callbacks every CLI run gets, whatever its config (Lightning keeps them beside the config's own)."""
    return [
        LearningRateLogger(logging_interval="epoch"),
        ExamplesPerSecond(),
        EffectiveBatchSize(),  # micro-batch × accumulation × devices, printed and logged at fit start
        Dashboards(),
        GracefulInterrupt(),  # Ctrl+C stops after the batch and saves last.ckpt
    ]
