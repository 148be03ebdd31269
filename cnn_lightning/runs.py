"""Runs and their checkpoints, found in one place: ``last``, ``best``, a run folder, a run's saved config and the
model class a run or checkpoint holds. ``fit``, ``validate``, ``test``, ``predict``, ``export`` and ``report`` use
it. A run is a ``NAME/version_N`` folder under the logger's root (``lightning_logs/lenet/version_0``, NAME its
config's or its model's; earlier versions wrote ``lightning_logs/version_N``, found too), with ``config.yaml``
(saved by LightningCLI) and ``checkpoints/``; where a run's ``config.yaml`` says which model it trained, no
checkpoint is opened to find out.
"""

from __future__ import annotations

import itertools
import json
import pickle
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

from cnn_lightning.errors import ConfigError
from cnn_lightning.legacy import upgrade_hyperparameters

CONFIG_NAME = "config.yaml"
LAST_NAME = "last.ckpt"
BEST_PATTERN = "best-*.ckpt"  # RunCheckpoint's filename: best-epoch={epoch}-step={step}-val_acc={val/acc:.4f}
CLASS_KEY = "model_class_path"  # the model's class, in a Classifier's checkpoints (a plain Trainer's too; not older)
# Commands that act on a run's checkpoint log into a subfolder of that run named after them.
COMMAND_FOLDERS = ("validate", "test", "predict", "export")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only`` (no arbitrary code); refuse a missing, corrupt or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Checkpoint {path} does not exist. List runs with: ls -d lightning_logs/*/version_*")
    import torch  # here, not at the top: finding runs and configs needs no torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if (code := re.search(r"GLOBAL ([\w.]+)", str(error))) is None:
            raise ConfigError(f"Checkpoint {path} is corrupt or truncated ({str(error)[:200]}).") from None
        raise ConfigError(
            f"Checkpoint {path} holds a Python object beyond tensors and plain values ({code.group(1)}), which "
            "loading would run as code: it is refused, and never loaded unchecked. Use a checkpoint written by "
            "python -m cnn_lightning fit, or re-save this one's state_dict from a process you trust."
        ) from None
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"Checkpoint {path} is corrupt or truncated ({reason[:200]}). "
            f"Use another checkpoint from {path.parent} (e.g. the best-*.ckpt beside it) or start afresh."
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"{path} is not a Lightning checkpoint (no state_dict). Pass a .ckpt written by fit.")
    check_lightning_version(checkpoint, path)
    return checkpoint


# Lightning migrates its own older checkpoints in place and fails inside that migration (a KeyError on loop state)
# for a version it cannot migrate, or with InvalidVersion for none; this project's are written by Lightning 2.x.
VERSION_KEY = "pytorch-lightning_version"
OLDEST, BEYOND = Version("2.0"), Version("3.0")  # the Lightning versions whose checkpoints this project reads


def check_lightning_version(checkpoint: dict[str, Any], path: str | Path, *, required: bool = False) -> None:
    """Refuse a checkpoint whose recorded Lightning version is not a version, or outside [2.0, 3.0); one without a
    version only where the Trainer will load it (``required``)."""
    claimed = checkpoint.get(VERSION_KEY)
    if claimed is None and not required:
        return
    fix = "Use a checkpoint written by python -m cnn_lightning fit (or start afresh without --ckpt_path)."
    try:
        version = Version(str(claimed))
    except InvalidVersion:
        reason = "records no Lightning version" if claimed is None else f"records {claimed!r} as its Lightning version"
        raise ConfigError(f"Checkpoint {path} {reason}: it was not written by Lightning's Trainer. {fix}") from None
    if not OLDEST <= version < BEYOND:
        import lightning

        raise ConfigError(
            f"Checkpoint {path} was written by Lightning {claimed}; this project reads checkpoints of Lightning "
            f"{OLDEST} to {BEYOND} (exclusive; installed: {lightning.__version__}), whose loop state it can resume. "
            f"{fix}"
        )


def checkpoint_model(checkpoint: dict[str, Any]) -> str | None:
    """The class path of the model a checkpoint holds, as LightningCLI records it, else as the model does."""
    return checkpoint.get("hyper_parameters", {}).get("_class_path") or checkpoint.get(CLASS_KEY)


def checkpoint_settings(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The model settings a checkpoint holds: its hyperparameters without LightningCLI's ``_class_path`` and
    ``_instantiator``, and as today's model takes them (a checkpoint of version 0.2.0 carries the engine's too)."""
    settings = upgrade_hyperparameters(checkpoint.get("hyper_parameters", {}))
    return {key: value for key, value in settings.items() if not key.startswith("_")}


def run_folder(path: str | Path) -> Path | None:
    """The run a path belongs to: the folder itself, or the run of a ``checkpoints/`` folder or a file in it."""
    path = Path(path)
    for candidate in (path, path.parent, path.parent.parent):
        is_run = (candidate / CONFIG_NAME).is_file() or (candidate / "checkpoints").is_dir()
        if candidate.name != "checkpoints" and is_run:
            return candidate
    return None


def is_command_log(folder: Path) -> bool:
    """Whether ``folder`` is the log of a command run on another run's checkpoint (``version_0/test/version_1``),
    rather than a run of its own."""
    return folder.parent.name in COMMAND_FOLDERS and run_folder(folder.parent.parent) == folder.parent.parent


def runs_under(log_root: Path) -> list[Path]:
    """The run folders under a logger's root: ``NAME/version_N``, and ``version_N`` as earlier versions wrote them."""
    return [path for path in (*log_root.glob("version_*"), *log_root.glob("*/version_*")) if path.is_dir()]


def next_version(root: Path) -> Path:
    """``root/version_N`` for the first N not taken: a new run's folder (not created here)."""
    taken = {int(path.name[8:]) for path in root.glob("version_*") if path.name[8:].isdigit()}
    return root / f"version_{next(n for n in range(len(taken) + 1) if n not in taken)}"


RESERVED: list[Path] = []  # the folders this process created to reserve run folders, outermost first


def release_unused_folders() -> None:
    """Remove the folders this process reserved and never wrote into (a command that failed before its run began)."""
    while RESERVED:
        folder = RESERVED.pop()
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def reserve_run_folder(root: Path) -> Path:
    """A new run's folder ``root/version_N``, created here by an exclusive ``mkdir`` (the next number when another
    process took this one first): runs started at the same instant each get their own, before anything is written."""
    missing = [folder for folder in (root, *root.parents) if not folder.exists()]
    root.mkdir(parents=True, exist_ok=True)
    RESERVED.extend(reversed(missing))  # released innermost first, like the run folder itself
    folder = next_version(root)
    while True:
        try:
            folder.mkdir()
            RESERVED.append(folder)
            return folder
        except FileExistsError:
            folder = root / f"version_{int(folder.name[8:]) + 1}"


def run_model(run: Path) -> str | None:
    """The model class path a run trained, from its saved ``config.yaml`` (None if it has none)."""
    try:
        model = yaml.safe_load((run / CONFIG_NAME).read_text()).get("model")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    return model.get("class_path") if isinstance(model, dict) else None


def last_checkpoint(run: Path) -> Path | None:
    path = run / "checkpoints" / LAST_NAME
    return path if path.is_file() else None


def best_checkpoint(run: Path) -> Path | None:
    """The run's best checkpoint by validation accuracy (the highest ``val_acc`` in the names, if several); in a run a
    plain ``lightning.Trainer`` saved (``epoch=0-step=215.ckpt``: no accuracy in the name), its newest."""
    folder = run / "checkpoints"
    candidates = list(folder.glob(BEST_PATTERN)) or [path for path in folder.glob("*.ckpt") if path.name != LAST_NAME]

    def accuracy(path: Path) -> float:
        found = re.search(r"val_acc=([0-9.]+?)(?:-v\d+)?\.ckpt$", path.name)
        return float(found.group(1)) if found else -1.0

    return max(candidates, key=lambda path: (accuracy(path), path.stat().st_mtime), default=None)


def same_model(a: str | None, b: str | None) -> bool:
    """Whether two class paths name the same class (``DenseNet`` and ``cnn_lightning.models.DenseNet`` do)."""
    return a is None or b is None or a.rsplit(".", 1)[-1] == b.rsplit(".", 1)[-1]


def newest_checkpoint(log_root: Path, class_path: str | None, kind: str) -> Path | None:
    """``kind`` (``last`` or ``best``) checkpoint of the newest run under ``log_root`` that trained
    ``class_path``; runs are told apart by their ``config.yaml``, checkpoints are opened only for runs without one."""
    find = last_checkpoint if kind == "last" else best_checkpoint
    found = [(path, run) for run in runs_under(log_root) if (path := find(run)) is not None]
    for path, run in sorted(found, key=lambda item: item[0].stat().st_mtime, reverse=True):
        held = run_model(run) if (run / CONFIG_NAME).is_file() else checkpoint_model(load_checkpoint(path))
        if class_path is None or same_model(held, class_path):
            return path
    return None


def resolve_checkpoint(requested: str, *, subcommand: str, class_path: str | None, log_root: Path) -> Path:
    """The checkpoint file ``--ckpt_path`` means: ``last``/``best`` of the newest run of the model, a run folder's
    ``last.ckpt`` for ``fit`` and its best checkpoint otherwise, or the file itself."""
    model = f" of {class_path.rsplit('.', 1)[-1]}" if class_path else ""
    if requested in ("last", "best"):
        path = newest_checkpoint(log_root, class_path, requested)
        if path is None:
            what = LAST_NAME if requested == "last" else BEST_PATTERN
            raise ConfigError(
                f"--ckpt_path {requested}: no {what}{model} under {log_root}/*/version_*/checkpoints. "
                "Train one first, or pass a checkpoint file."
            )
        return path
    folder = Path(requested)
    if folder.is_dir():
        run = run_folder(folder) or folder
        kind = "last" if subcommand == "fit" else "best"
        path = last_checkpoint(run) if kind == "last" else best_checkpoint(run) or last_checkpoint(run)
        if path is None:
            raise ConfigError(f"{folder} holds no checkpoint (looked in {run}/checkpoints). Pass a .ckpt file.")
        return path
    return folder


def saved_config_args(args: Sequence[str]) -> list[str]:
    """``--config`` of the run a bare ``--ckpt_path`` points into (a run folder or a checkpoint in one), so the
    command uses the settings the run was trained with, or ``--model`` with the class a checkpoint outside any run
    names; nothing when a config is given."""
    if any(arg in ("--config", "-c") or arg.startswith("--config=") for arg in args):
        return []
    values = [b for a, b in itertools.pairwise(args) if a == "--ckpt_path"]
    values += [a.split("=", 1)[1] for a in args if a.startswith("--ckpt_path=")]
    for value in values:
        run = run_folder(value)
        if run is not None and (saved := _saved_config(run)) is not None:
            return ["--config", str(saved)]
        # A checkpoint outside any run, or in a run whose config.yaml is gone: the class it names (its
        # hyperparameters then configure it), and for a run its data settings too.
        found = Path(value) if Path(value).is_file() else run and (last_checkpoint(run) or best_checkpoint(run))
        if found and not any(arg == "--model" or arg.startswith("--model=") for arg in args):
            checkpoint = load_checkpoint(found)  # a refused checkpoint is said as such, not as a missing model
            if held := checkpoint_model(checkpoint):
                model = ["--model", json.dumps({"class_path": held, "init_args": checkpoint_settings(checkpoint)})]
                return model if Path(value).is_file() and run is None else model + _data_args(run, checkpoint)
    return []


def _saved_config(run: Path) -> Path | None:
    """The run's ``config.yaml``, or where it was deleted the newest ``config.resume-N.yaml`` (a whole config too)."""
    resumes = sorted(run.glob("config.resume-*.yaml"), key=lambda path: int(re.sub(r"\D", "", path.name) or 0))
    return run / CONFIG_NAME if (run / CONFIG_NAME).is_file() else (resumes[-1] if resumes else None)


def _data_args(run: Path, checkpoint: dict[str, Any]) -> list[str]:
    """``--data.NAME VALUE`` for the data settings a checkpoint holds (``resize`` follows the model's input size),
    for a run whose ``config.yaml`` is gone; the trainer's settings went with it, which one line says."""
    print(
        f"{run} has no {CONFIG_NAME} (deleted?): its model and data settings come from its checkpoint, the trainer's "
        "are the defaults unless given (--trainer.max_epochs N, or --config NAME.yaml for all of them).",
        file=sys.stderr,
    )
    held = checkpoint.get("datamodule_hyper_parameters", {})
    data = {k: v for k, v in held.items() if k != "resize" and not k.startswith("_")}  # not LightningCLI's own
    return [arg for k, v in data.items() for arg in (f"--data.{k}", v if isinstance(v, str) else json.dumps(v))]


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: a config's ``[4, 4]`` and a signature's ``(4, 4)`` are the same setting."""
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


def checkpoint_overrides(model_class: type, asked: dict[str, Any], checkpoint: dict[str, Any]) -> dict[str, tuple]:
    """The model settings the checkpoint's own hyperparameters replace (``{name: (asked, held)}``); refused when
    they cannot both hold, that is when the asked settings would give the checkpoint's weights other shapes."""
    held = checkpoint_settings(checkpoint)
    differing = {k: (asked[k], held[k]) for k in asked.keys() & held.keys() if _plain(asked[k]) != _plain(held[k])}
    if not differing:
        return {}
    try:
        import torch

        with torch.device("meta"):
            wanted = {k: tuple(v.shape) for k, v in model_class(**{**held, **asked}).state_dict().items()}
            stored = {k: tuple(v.shape) for k, v in model_class(**held).state_dict().items()}
    except ConfigError as error:
        wanted, stored, reason = None, {}, str(error)
    if wanted != stored:
        flags = ", ".join(f"--model.init_args.{k} {a} (checkpoint: {h})" for k, (a, h) in sorted(differing.items()))
        why = reason if wanted is None else "the checkpoint's weights have other shapes"
        raise ConfigError(
            f"The checkpoint was trained with other model settings: {flags}; {why}. Drop those settings (the "
            "checkpoint's apply) or use a checkpoint trained with them."
        )
    return differing
