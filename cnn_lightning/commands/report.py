"""``python -m cnn_lightning report [LOGDIR]``: one Markdown table and a few plots over every run in LOGDIR.

A run is a folder holding TensorBoard event files (``lightning_logs/NAME/version_N``, or Lightning's own
``lightning_logs/version_N``). Where each column comes from:

- accuracy and loss: the last ``train/loss``, ``train/acc``, ``val/acc``, ``test/acc`` scalars; epochs from the
  ``epoch`` scalar Lightning logs beside them.
- examples/sec: the CLI's ``final/examples_per_sec`` (the closing line's figure), else ``train/samples`` ÷
  ``train/time`` at the last step Lightning's ``ThroughputMonitor`` logged (every ``log_every_n_steps``): both are
  rank 0's rate over the whole fit, validation excluded, so they are multiplied by the world size. The monitor's
  windowed ``train/device/samples_per_sec`` (``train/samples_per_sec`` under DDP) needs 50 steps and is not used.
- model, parameters, device: the ``run/setup`` text the ``Dashboards`` callback logs (what the Trainer resolved:
  ``accelerator: auto`` becomes ``cuda``); for runs without it, ``config.yaml`` that LightningCLI saves beside the
  events: the model's class path, its parameters counted by building it on the meta device (no memory, no
  weights), and the configured accelerator.
- variant and peak memory: :mod:`cnn_lightning.commands.report_columns` (``config.yaml``'s settings that differ from
  the book's; the last ``train/peak_memory_mib``).
"""

from __future__ import annotations

import importlib
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnn_lightning.callbacks.dashboards import SETUP_TAG, parse_setup_markdown
from cnn_lightning.commands.report_columns import BOOK, peak_memory_cell, run_variant, time_to_target_cell
from cnn_lightning.commands.report_studies import STUDY_FILE, check_study_file, repeated_settings_table, study_plots_for
from cnn_lightning.errors import ConfigError, on_full_disk
from cnn_lightning.loggers.tags import metric_name
from cnn_lightning.models import MODELS
from cnn_lightning.output_places import check_folder
from cnn_lightning.runs import CONFIG_NAME, is_command_log, run_model

COLUMNS = (
    *("run", "model", "variant", "epochs", "train loss", "train acc", "val acc", "test acc"),
    *("book test acc", "examples/sec", "peak memory", "time to target", "parameters"),
)
PLOTS = {
    "accuracy.png": "Training (solid) and validation (dashed) accuracy per epoch",
    "loss.png": "Training (solid) and validation (dashed) loss per epoch",
    "accuracy_vs_parameters.png": "Test accuracy against model size",
    "accuracy_vs_throughput.png": "Test accuracy against training throughput",
}
# Only what the report reads is kept in memory; images and histograms are skipped.
SIZE_GUIDANCE = {"scalars": 0, "tensors": 0, "images": 1, "histograms": 1, "compressedHistograms": 1, "audio": 1}


@dataclass
class Run:
    """What the report shows of one run folder."""

    name: str
    model: str = "?"
    parameters: int | None = None
    device: str = "?"
    epochs: int | None = None
    last: dict[str, float] = field(default_factory=dict)  # tag -> last value
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)  # tag -> (epochs, values)
    examples_per_sec: float | None = None
    variant: str | None = None  # what differs from the book's experiment ("book": nothing)


def find_runs(logdir: Path) -> list[Path]:
    """Folders under ``logdir`` (itself included) that directly hold event files, in natural order; the logs of
    commands run on a run's checkpoint (its ``test/``, ``predict/`` subfolders) are not runs of their own."""
    folders = {path.parent for path in logdir.rglob("events.out.tfevents.*") if path.is_file()}
    folders = {folder for folder in folders if not is_command_log(folder)}

    def natural(path: Path) -> list[Any]:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]

    return sorted(folders, key=natural)


def _scalars(accumulator: EventAccumulator) -> dict[str, list[tuple[int, float]]]:
    """Each scalar series by its metric's name (``test/acc``), whichever tags the run's version wrote."""
    tags = accumulator.Tags()["scalars"]
    return {metric_name(tag): [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in tags}


def _setup(accumulator: EventAccumulator) -> dict[str, str]:
    tag = f"{SETUP_TAG}/text_summary"  # SummaryWriter.add_text's suffix
    if tag not in accumulator.Tags()["tensors"]:
        return {}
    return parse_setup_markdown(accumulator.Tensors(tag)[-1].tensor_proto.string_val[0].decode())


def _from_config(folder: Path) -> tuple[str, int | None, str, int]:
    """Model name, parameters, device and world size from LightningCLI's ``config.yaml``; '?' where missing."""
    path = folder / CONFIG_NAME
    if not path.is_file():
        return "?", None, "?", 1
    config = yaml.safe_load(path.read_text()) or {}
    model, trainer = config.get("model") or {}, config.get("trainer") or {}
    class_path = run_model(folder) or "?"
    parameters = None
    try:
        module, _, name = class_path.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        with torch.device("meta"):  # shapes only: no memory, no initialization cost
            network = cls(**(model.get("init_args") or {}))
        parameters = sum(p.numel() for p in network.parameters())
    except Exception:  # a class that moved or does not build: the count stays unknown, the row stays
        pass
    devices, nodes = trainer.get("devices"), trainer.get("num_nodes") or 1
    world = (len(devices) if isinstance(devices, list) else int(devices) if str(devices).isdigit() else 1) * nodes
    return class_path.rpartition(".")[2], parameters, str(trainer.get("accelerator", "?")), world


def load_run(folder: Path, logdir: Path) -> Run:
    """Read one run folder: its event files and, where they lack the setup, its ``config.yaml``."""
    accumulator = EventAccumulator(str(folder), size_guidance=SIZE_GUIDANCE)
    accumulator.Reload()
    scalars = _scalars(accumulator)
    name = folder.relative_to(logdir).as_posix() if folder != logdir else folder.name
    run = Run(name=name, last={tag: events[-1][1] for tag, events in scalars.items() if events})
    run.variant = run_variant(folder)
    setup = _setup(accumulator)
    if setup:
        world = int(setup.get("world_size", "1"))
        strategy = setup.get("strategy", "").removesuffix("Strategy")
        device = setup.get("device", "?") + (f" × {world} ({strategy})" if world > 1 else "")
        params = setup.get("parameters", "")
        run.model, run.device = setup.get("model", "?"), device
        run.parameters = int(params) if params.isdigit() else None
    else:
        run.model, run.parameters, accelerator, world = _from_config(folder)
        run.device = accelerator + (f" × {world}" if world > 1 else "")
    # Epoch-level metrics are logged at the step where the epoch ends, next to the ``epoch`` scalar.
    epoch_at = {step: value for step, value in scalars.get("epoch", [])}
    for tag in ("train/acc", "val/acc", "train/loss", "val/loss"):
        if events := scalars.get(tag):
            xs = [epoch_at[step] + 1 if step in epoch_at else float(step) for step, _ in events]
            run.curves[tag] = (xs, [value for _, value in events])
    if "train/loss" in run.curves and all(step in epoch_at for step, _ in scalars["train/loss"]):
        run.epochs = int(max(run.curves["train/loss"][0]))
    samples, seconds = run.last.get("train/samples"), run.last.get("train/time")
    rate = run.last.get("final/examples_per_sec") or (samples / seconds if samples and seconds else None)
    run.examples_per_sec = rate * world if rate else None  # rank 0's rate; every rank takes as many steps
    return run


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def markdown_table(runs: list[Run]) -> str:
    """One row per run: the columns of :data:`COLUMNS` plus the device."""
    header = [*COLUMNS, "device"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * 10 + ["---"]) + "|"]
    for run in runs:
        # The book's figure is for its own network on its own data only, not a variant's.
        record = MODELS[run.model].record if run.model in MODELS and run.variant in (None, BOOK) else None
        cells = [
            run.name,
            run.model,
            run.variant or "?",
            _fmt(run.epochs, "d"),
            _fmt(run.last.get("train/loss"), ".4f"),
            *(_fmt(run.last.get(f"{stage}/acc"), ".4f") for stage in ("train", "val", "test")),
            str(record.book_accuracy) if record else "—",
            _fmt(run.examples_per_sec, ",.0f"),
            peak_memory_cell(run.last, run.device),
            time_to_target_cell(run.last),
            _fmt(run.parameters, ","),
            run.device,
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def _label(run: Run) -> str:
    variant = f" {run.variant}" if run.variant not in (None, BOOK) else ""
    return f"{run.model}{variant} ({run.name})"


def plot_curves(runs: list[Run], metric: str, path: Path) -> bool:
    """``train/<metric>`` solid and ``val/<metric>`` dashed against epochs, one colour per run."""
    figure = Figure(figsize=(7, 4.5), dpi=120, layout="constrained")
    ax = figure.add_subplot()
    drawn = False
    for i, run in enumerate(runs):
        for stage, style in (("train", "-"), ("val", "--")):
            if curve := run.curves.get(f"{stage}/{metric}"):
                label = f"{_label(run)} {stage}"
                ax.plot(*curve, linestyle=style, marker="o", markersize=3, color=f"C{i % 10}", label=label)
                drawn = True
    if not drawn:
        return False
    ax.set(xlabel="epoch", ylabel=metric, title=PLOTS[path.name])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    figure.savefig(path)
    return True


def plot_scatter(runs: list[Run], x_of: str, xlabel: str, path: Path) -> bool:
    """Test accuracy against ``getattr(run, x_of)`` on a log axis, each point named by its run."""
    points = [(getattr(r, x_of), r.last["test/acc"], r) for r in runs if getattr(r, x_of) and "test/acc" in r.last]
    if not points:
        return False
    figure = Figure(figsize=(7, 4.5), dpi=120, layout="constrained")
    ax = figure.add_subplot()
    for i, (x, y, run) in enumerate(points):
        ax.scatter(x, y, color=f"C{i % 10}")
        ax.annotate(_label(run), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel="test accuracy", title=PLOTS[path.name])
    ax.grid(alpha=0.3, which="both")
    figure.savefig(path)
    return True


def write_report(runs: list[Run], logdir: Path, out: Path, folders: list[Path] | None = None) -> tuple[str, list[str]]:
    """Write ``report.md`` and the plots into ``out``; return the table and the plot file names written. With the
    run ``folders``, settings run more than once get a row of their own (mean ± std), and a ``tune`` folder's
    study its Optuna plots."""
    out.mkdir(parents=True, exist_ok=True)
    drawers = {
        "accuracy.png": lambda path: plot_curves(runs, "acc", path),
        "loss.png": lambda path: plot_curves(runs, "loss", path),
        "accuracy_vs_parameters.png": lambda path: plot_scatter(runs, "parameters", "parameters", path),
        "accuracy_vs_throughput.png": lambda path: plot_scatter(runs, "examples_per_sec", "examples/sec", path),
    }
    plots = [name for name, draw in drawers.items() if draw(out / name)]
    table = markdown_table(runs)
    repeated = repeated_settings_table(runs, folders) if folders else None
    study_plots = study_plots_for(logdir, out)
    sections = [
        "# Training report",
        f"{len(runs)} run(s) under `{logdir}`, written by `python -m cnn_lightning report`.",
        table,
        "variant: what the run changes from the book's network and data (book: nothing). "
        "book test acc: the book's 10-epoch test accuracy for the model, median [range] of 66 builds (not shown "
        "for a variant). peak memory: the most training held, on CUDA allocated, on the CPU the resident set's "
        "growth (+). "
        "examples/sec: training examples per second over the whole fit, validation excluded, all devices "
        "together. Accuracies and loss: last logged value. device: as resolved by the Trainer (as configured for "
        "runs without the `run/setup` text).",
        *(["## Repeated settings (runs that differ only in their seed)", repeated] if repeated else []),
        *(f"## {PLOTS[name]}\n\n![{PLOTS[name]}]({name})" for name in plots),
        *(f"## Study: {name.removesuffix('.png').replace('_', ' ')}\n\n![{name}]({name})" for name in study_plots),
    ]
    (out / "report.md").write_text("\n\n".join(sections) + "\n")
    return table, plots


def report(logdir: str = "lightning_logs", out: str | None = None, overwrite: bool = False) -> None:
    """Write a Markdown table (report.md) and PNG plots over every TensorBoard run in a folder.

    Args:
        logdir: folder of runs, e.g. lightning_logs.
        out: output folder (default LOGDIR/report).
        overwrite: replace report.md and the plots in a used output folder.
    """
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise ConfigError(f"No folder {logdir}. Pass the folder that holds the runs, e.g. lightning_logs.")
    out = Path(out) if out else logdir / "report"
    check_folder(out, what="the report", fix="Pass --out with a writable folder.")
    check_study_file(logdir / STUDY_FILE)  # a tune folder's study, read for its plots
    report_dir = out.resolve()  # a report folder inside LOGDIR is not a run, even if someone put events there
    folders = [f for f in find_runs(logdir) if report_dir != f.resolve() and report_dir not in f.resolve().parents]
    if not folders:
        raise ConfigError(
            f"No TensorBoard runs (events.out.tfevents.* files) under {logdir}. "
            "Train one first: python -m cnn_lightning fit --config lenet.yaml"
        )
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} already exists and is not empty. Pass --out NEW_FOLDER, or --overwrite.")
    # EventAccumulator warns about every run whose graph was logged twice (fit and test); that is expected.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    runs = [load_run(folder, logdir) for folder in folders]
    before = set(out.iterdir()) if out.is_dir() else set()

    def written() -> set[Path]:  # this call's files: partly written, and regenerable
        return set(out.iterdir()) - before

    with on_full_disk("the report", out, intact=f"The runs under {logdir} are untouched.", remove=written):
        table, plots = write_report(runs, logdir, out, folders)
    print(table)
    if repeated := repeated_settings_table(runs, folders):
        print("\nRepeated settings (mean ± std [min–max]):\n" + repeated)
    print(f"\nWrote {out / 'report.md'} and {len(plots)} plot(s): {', '.join(plots) or 'none'}.")
