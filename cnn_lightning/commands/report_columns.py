"""Three of ``report``'s columns: the run's variant (what its network and data change from the book's experiment,
read from the ``config.yaml`` LightningCLI saves in each run), the peak training memory ``fit`` measured
(``PeakMemory``'s ``train/peak_memory_mib``) and the time to a target (``--stop_at.accuracy``'s final metrics)."""

from __future__ import annotations

from pathlib import Path

import yaml

from cnn_lightning.callbacks.peak_memory import TAG as PEAK_MEMORY
from cnn_lightning.callbacks.stop_at_accuracy import SECONDS_TO_TARGET, TARGET, TARGET_EPOCH
from cnn_lightning.commands.closing_line import memory_text
from cnn_lightning.models.variants import class_variant_label
from cnn_lightning.runs import CONFIG_NAME

BOOK = "book"


def run_variant(folder: Path) -> str | None:
    """The run's label by what differs from the book's (``book`` for the book's network on Fashion-MNIST, e.g.
    ``pooling=max, dataset=mnist`` for a variant), from its ``config.yaml``; None for a run without one."""
    try:
        config = yaml.safe_load((folder / CONFIG_NAME).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    model, data = config.get("model"), config.get("data")
    if not isinstance(model, dict) or not isinstance(model.get("class_path"), str):
        return None
    settings = model.get("init_args") or {}
    dataset = data.get("dataset") if isinstance(data, dict) else None
    return class_variant_label(model["class_path"], settings, dataset)


def peak_memory_cell(last: dict[str, float], device: str) -> str:
    """The run's peak training memory: ``+312 MiB`` on the CPU (the resident set's growth), ``1.25 GiB`` on CUDA."""
    if PEAK_MEMORY not in last:
        return "—"
    return ("+" if device.startswith("cpu") else "") + memory_text(last[PEAK_MEMORY])


def time_to_target_cell(last: dict[str, float]) -> str:
    """``0.900 in 312 s (epoch 7)``: the target, the seconds from the process's start to the validation that first
    reached it, and that epoch; ``0.900 not reached``; ``—`` for a run without a target."""
    final = {name.removeprefix("final/"): value for name, value in last.items() if name.startswith("final/")}
    if TARGET not in final:
        return "—"
    if SECONDS_TO_TARGET not in final:
        return f"{final[TARGET]:.3f} not reached"
    return f"{final[TARGET]:.3f} in {final[SECONDS_TO_TARGET]:,.0f} s (epoch {int(final[TARGET_EPOCH])})"
