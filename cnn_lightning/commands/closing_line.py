"""What a finished fit reports: its final metrics and the book's closing line (loss, accuracies, examples/sec, peak
memory, and with a target the time to it)."""

from __future__ import annotations

import lightning as L

from cnn_lightning.callbacks.peak_memory import TAG as PEAK_MEMORY
from cnn_lightning.callbacks.stop_at_accuracy import SECONDS_TO_TARGET, TARGET, TARGET_EPOCH, StopAtAccuracy
from cnn_lightning.callbacks.throughput import ExamplesPerSecond


def final_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The run's final metrics (per-class accuracies stay in their own charts), plus ``examples_per_sec``:
    the whole fit's training rate over all devices."""
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if "class_acc" not in name}
    monitor = next((cb for cb in trainer.callbacks if isinstance(cb, ExamplesPerSecond)), None)
    if monitor is not None and monitor.train_examples_per_sec:
        # Measured on rank 0; every rank trains the same number of equal batches in the same time.
        metrics["examples_per_sec"] = monitor.train_examples_per_sec * trainer.world_size
    for stopper in (cb for cb in trainer.callbacks if isinstance(cb, StopAtAccuracy)):
        metrics |= stopper.final_metrics()
    return metrics


def closing_line(metrics: dict[str, float], device: object) -> str:
    """The book's end-of-training printout, on two lines as ``train_ch6`` prints it (each fits 80 columns): loss and
    train/val/test accuracy, then examples/sec on the device and the peak training memory (``PeakMemory``: on the CPU
    the resident set's growth, hence the ``+``)."""
    parts = [f"{label} {metrics[key]:.3f}" for key, label in _CLOSING_FIELDS if key in metrics]
    speed = []
    if "examples_per_sec" in metrics:
        speed.append(f"{metrics['examples_per_sec']:,.1f} examples/sec on {device}")
    if PEAK_MEMORY in metrics:
        growth = "+" if str(device).startswith("cpu") else ""
        speed.append(f"peak memory {growth}{memory_text(metrics[PEAK_MEMORY])}")
    return "\n".join(line for line in (", ".join(parts), ", ".join(speed), target_line(metrics)) if line)


def target_line(metrics: dict[str, float]) -> str:
    """With ``--stop_at.accuracy``: when the target was reached, counted from the process's start, or that it was
    not."""
    if TARGET not in metrics:
        return ""
    if SECONDS_TO_TARGET not in metrics:
        return f"val acc {metrics[TARGET]:.3f} not reached"
    seconds, epoch = metrics[SECONDS_TO_TARGET], int(metrics[TARGET_EPOCH])
    return f"val acc {metrics[TARGET]:.3f} reached in epoch {epoch}, {seconds:,.1f} s after the start"


def memory_text(mib: float) -> str:
    """``mib`` MiB as ``312 MiB`` or ``1.25 GiB``."""
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


_CLOSING_FIELDS = (("train/loss", "loss"), ("train/acc", "train acc"), ("val/acc", "val acc"), ("test/acc", "test acc"))
