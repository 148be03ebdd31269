"""What ``report`` adds for repeated runs: one row per setting (mean ± std and min–max over its seeds, diverged
runs counted), and a study's Optuna plots (optimization history, parameter importances)."""

from __future__ import annotations

import json
import statistics
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cnn_lightning.callbacks.report_to_study import ReportToStudy
from cnn_lightning.errors import ConfigError
from cnn_lightning.legacy import current_class_path
from cnn_lightning.runs import CONFIG_NAME

# Keys that name where or with which seed a run went, not what it trained: runs differing only there repeat a setting.
NOT_THE_SETTING = ("seed_everything", "ckpt_path", "trainer.logger")
# Names the trial, not the setting; the run's other callbacks (EMA...) count. Trials of 0.1.0 name its old path.
TUNE_CALLBACK = f"{ReportToStudy.__module__}.{ReportToStudy.__qualname__}"
STUDY_FILE = "study.db"
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def check_study_file(path: Path) -> None:
    """Refuse a ``study.db`` that is not an SQLite database (SQLAlchemy would fail deep inside Optuna); a missing or
    empty file is a study still to be created."""
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as error:
        raise ConfigError(f"Study file {path} cannot be read: {error.strerror}. Check its permissions.") from None
    if header and header != SQLITE_HEADER:
        raise ConfigError(
            f"{path} is not an SQLite database (it lacks SQLite's header): not a study tune wrote, or a damaged "
            f"one. Move it away (mv {path} {path}.bak) and run again, or pass --storage to use another database."
        )


def _without(config: dict[str, Any], dotted: str) -> None:
    head, _, rest = dotted.partition(".")
    if rest and isinstance(config.get(head), dict):
        _without(config[head], rest)
    else:
        config.pop(head, None)


def setting_of(folder: Path) -> str | None:
    """The run's ``config.yaml`` without seed, paths and callbacks, as canonical text (None without a config)."""
    path = folder / CONFIG_NAME
    if not path.is_file():
        return None
    config = yaml.safe_load(path.read_text()) or {}
    for key in NOT_THE_SETTING:
        _without(config, key)
    trainer = config.get("trainer") or {}
    if isinstance(trainer.get("callbacks"), list):
        trainer["callbacks"] = [
            c
            for c in trainer["callbacks"]
            if not (isinstance(c, dict) and current_class_path(str(c.get("class_path"))) == TUNE_CALLBACK)
        ]
    return json.dumps(config, sort_keys=True, default=str)


def diverged(folder: Path) -> bool:
    """Whether the run stopped on a non-finite loss: ``tune`` records each run's exit code (3: diverged)."""
    status = folder / "status.yaml"
    return status.is_file() and bool((yaml.safe_load(status.read_text()) or {}).get("diverged"))


def _summary(values: Sequence[float]) -> str:
    if not values:
        return "—"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f} [{min(values):.4f}–{max(values):.4f}]"


def repeated_settings_table(runs: Sequence[Any], folders: Sequence[Path]) -> str | None:
    """Markdown: one row per setting that ran more than once (runs with equal configs but for the seed), with
    mean ± std (sample std) [min–max] of each accuracy over its finished runs, and diverged runs counted."""
    groups: dict[str, list[tuple[Any, Path]]] = {}
    for run, folder in zip(runs, folders, strict=True):
        if (setting := setting_of(folder)) is not None:
            groups.setdefault(setting, []).append((run, folder))
    repeated = [members for members in groups.values() if len(members) > 1]
    if not repeated:
        return None
    lines = [
        "| setting (first run) | model | runs | diverged | train acc | val acc | test acc |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for members in repeated:
        finished = [run for run, folder in members if not diverged(folder) and "test/acc" in run.last]
        cells = [members[0][0].name, members[0][0].model, str(len(members))]
        cells.append(str(sum(diverged(folder) for _, folder in members)))
        cells += [_summary([run.last[f"{stage}/acc"] for run in finished]) for stage in ("train", "val", "test")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_study_plots(study: Any, out: Path) -> list[str]:
    """Optuna's optimization history and parameter importances as PNGs in ``out``; the names written."""
    import optuna
    from optuna.visualization import matplotlib as plots

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # stable since Optuna 2
    written = []
    for name, draw in (("optimization_history.png", plots.plot_optimization_history),
                       ("param_importances.png", plots.plot_param_importances)):  # fmt: skip
        try:
            axes = draw(study)
        except Exception as error:  # importances need two finished trials whose parameters differ
            print(f"No {name}: {str(error).splitlines()[0] if str(error) else type(error).__name__}.")
            continue
        axes.figure.set_size_inches(8, 5)
        axes.figure.tight_layout()
        axes.figure.savefig(out / name)
        written.append(name)
    return written


def study_plots_for(logdir: Path, out: Path) -> list[str]:
    """The plots of the study stored in ``logdir/study.db`` (a ``tune`` folder), if there is one."""
    if not (logdir / STUDY_FILE).is_file():
        return []
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{logdir / STUDY_FILE}"
    return [
        name
        for summary in optuna.get_all_study_summaries(storage)
        for name in write_study_plots(optuna.load_study(study_name=summary.study_name, storage=storage), out)
    ]
