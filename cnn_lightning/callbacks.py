"""Callbacks every run gets: throughput in examples/sec and the book's closing line."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ThroughputMonitor
from lightning.pytorch.trainer.states import RunningStage


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


def closing_line(trainer: L.Trainer) -> str:
    """The book's end-of-training printout: loss, train/val/test accuracy and examples/sec on the device."""
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    parts = [f"{label} {metrics[key]:.3f}" for key, label in _CLOSING_FIELDS if key in metrics]
    monitor = next((cb for cb in trainer.callbacks if isinstance(cb, ExamplesPerSecond)), None)
    if monitor is not None and monitor.train_examples_per_sec:
        parts.append(f"{monitor.train_examples_per_sec:,.1f} examples/sec on {trainer.strategy.root_device}")
    return ", ".join(parts)


_CLOSING_FIELDS = (("train/loss", "loss"), ("train/acc", "train acc"), ("val/acc", "val acc"), ("test/acc", "test acc"))


def default_callbacks() -> list[Callback]:
    """Callbacks every CLI run gets, whatever its config (Lightning keeps them beside the config's own)."""
    return [
        LearningRateMonitor(logging_interval="epoch"),
        ExamplesPerSecond(),
    ]
