"""Training throughput in examples/sec, FLOPs/s and MFU, measured without a device synchronization per step."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.throughput import Throughput, get_available_flops
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from cnn_lightning.engine import examples_in, passed_multiple
from cnn_lightning.training.precision import compute_dtype


class ExamplesPerSecond(Callback):
    """Training throughput logged as Lightning's ``ThroughputMonitor`` logs it (``train/time``, ``train/samples``,
    ``train/device/samples_per_sec``, and FLOPs/s and MFU when the model reports ``flops_per_example``), computed by
    Lightning's ``Throughput``, but measured only at the steps that log (every ``log_every_n_steps``) and at epoch
    ends. ``ThroughputMonitor`` synchronizes a CUDA device after every batch, which stalls the GPU once per step
    while Python prepares the next one; here the device is synchronized once per logged step.

    The rate is wall clock over training batches, data loading included, validation excluded; it also keeps the
    whole fit's rate for the closing line.

    Args:
        window_size: logged steps the windowed rate spans (2: the rate since the previous logged step).
    """

    handles_chunks = True  # it counts a chunk's examples, logs on step multiples a chunk passed (cnn_lightning.engine)

    def __init__(self, window_size: int = 2) -> None:
        super().__init__()
        self.window_size = window_size
        self.throughput: Throughput | None = None
        self.samples = self.batches = 0
        self.elapsed = 0.0
        self._start: float | None = None
        self._previous_step = -1
        self._batches_measured = self._samples_measured = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        peak = get_available_flops(trainer.strategy.root_device, compute_dtype(trainer.precision_plugin))
        self.throughput = Throughput(available_flops=peak, world_size=trainer.world_size, window_size=self.window_size)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.samples = self.batches = self._batches_measured = self._samples_measured = 0
        self.elapsed = 0.0
        self._previous_step = trainer.global_step  # where this fit starts: 0, or a resumed run's step
        self.throughput.reset()
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.samples += examples_in(batch)
        self.batches += 1
        previous, self._previous_step = self._previous_step, trainer.global_step
        if passed_multiple(previous, trainer.global_step, trainer.log_every_n_steps):
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
        flops = getattr(pl_module, "flops_per_example", None)
        examples = self.samples - self._samples_measured  # every batch by its own size: the short last one too
        self.throughput.update(
            time=self.elapsed,
            batches=self.batches,
            samples=self.samples,
            flops=None if flops is None else flops * examples,
        )
        self._batches_measured, self._samples_measured = self.batches, self.samples
        if log and trainer.loggers:
            metrics = {f"train/{name}": value for name, value in self.throughput.compute().items()}
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)

    @property
    def train_examples_per_sec(self) -> float | None:
        """Examples per second over the whole fit so far on this device (None before the first measurement)."""
        return self.samples / self.elapsed if self.elapsed > 0 else None
