"""Callbacks every run gets: throughput in examples/sec and the book's closing line."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.throughput import Throughput, get_available_flops
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.trainer.states import TrainerFn

from cnn_lightning.batching import EffectiveBatchSize
from cnn_lightning.dashboards import Dashboards
from cnn_lightning.reliability import GracefulInterrupt


def batch_examples(batch: Any) -> int:
    """Examples in an ``(images, labels)`` batch."""
    return len(batch[1])


# Compute dtype of each Trainer precision, for the device's peak FLOP/s (MFU); anything else counts as float32.
PRECISION_DTYPES = {
    "bf16-mixed": torch.bfloat16,
    "bf16-true": torch.bfloat16,
    "16-mixed": torch.float16,
    "16-true": torch.float16,
    "64-true": torch.float64,
}


class ExamplesPerSecond(Callback):
    """Training throughput logged as Lightning's ``ThroughputMonitor`` logs it (``train/time``, ``train/samples``,
    ``train/device/samples_per_sec``, and FLOPs/s and MFU when the model reports ``flops_per_batch``), computed by
    Lightning's ``Throughput``, but measured only at the steps that log (every ``log_every_n_steps``) and at epoch
    ends. ``ThroughputMonitor`` synchronizes a CUDA device after every batch, which stalls the GPU once per step
    while Python prepares the next one; here the device is synchronized once per logged step.

    The rate is wall clock over training batches, data loading included, validation excluded; it also keeps the
    whole fit's rate for the closing line.

    Args:
        window_size: logged steps the windowed rate spans (2: the rate since the previous logged step).
    """

    def __init__(self, window_size: int = 2) -> None:
        super().__init__()
        self.window_size = window_size
        self.throughput: Throughput | None = None
        self.samples = self.batches = 0
        self.elapsed = 0.0
        self._start: float | None = None
        self._steps_measured = -1
        self._batches_measured = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        dtype = PRECISION_DTYPES.get(str(trainer.precision), torch.float32)
        peak = get_available_flops(trainer.strategy.root_device, dtype)
        self.throughput = Throughput(available_flops=peak, world_size=trainer.world_size, window_size=self.window_size)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.samples = self.batches = self._batches_measured = 0
        self.elapsed, self._steps_measured = 0.0, -1
        self.throughput.reset()
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.samples += batch_examples(batch)
        self.batches += 1
        step = trainer.global_step
        if step != self._steps_measured and step % trainer.log_every_n_steps == 0:
            self._measure(trainer, pl_module, log=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._measure(trainer, pl_module, log=False)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and self._start is not None:
            self._measure(trainer, pl_module, log=False)
            self._start = None  # the clock stops while validation runs

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and self._start is None:
            self._start = time.perf_counter() - self.elapsed

    def _measure(self, trainer: L.Trainer, pl_module: L.LightningModule, *, log: bool) -> None:
        if self._start is None or self.batches == self._batches_measured:
            return
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)  # the work queued so far belongs to this interval
        self.elapsed = time.perf_counter() - self._start
        flops = getattr(pl_module, "flops_per_batch", None)
        interval = self.batches - self._batches_measured
        self.throughput.update(
            time=self.elapsed,
            batches=self.batches,
            samples=self.samples,
            flops=None if flops is None else flops * interval,
        )
        self._batches_measured, self._steps_measured = self.batches, trainer.global_step
        if log and trainer.loggers:
            metrics = {f"train/{name}": value for name, value in self.throughput.compute().items()}
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)

    @property
    def train_examples_per_sec(self) -> float | None:
        """Examples per second over the whole fit so far on this device (None before the first measurement)."""
        return self.samples / self.elapsed if self.elapsed > 0 else None


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


class ResumedEpochProgress(Callback):
    """Gives the progress bar its epoch after a mid-epoch resume: Lightning does not call ``on_train_epoch_start``
    for an epoch it resumes, so the bar would read ``Training: 91/?`` instead of ``Epoch 0: 91/215``."""

    def __init__(self) -> None:
        self._started_epoch: int | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started_epoch = trainer.current_epoch

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._started_epoch != trainer.current_epoch:
            self._started_epoch = trainer.current_epoch
            if trainer.progress_bar_callback is not None:
                trainer.progress_bar_callback.on_train_epoch_start(trainer, pl_module)


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
        ResumedEpochProgress(),
    ]
