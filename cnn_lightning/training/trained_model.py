"""A trained model out of a checkpoint or a run folder, of any importable :class:`Classifier` subclass: the book's
eight, a student's variant in their own module, a checkpoint written by the CLI (whose hyperparameters name the class,
``_class_path``) or by a plain ``lightning.Trainer`` (whose do not: then the class is passed)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from cnn_lightning.errors import ConfigError
from cnn_lightning.runs import (
    best_checkpoint,
    checkpoint_model,
    checkpoint_settings,
    last_checkpoint,
    load_checkpoint,
    run_folder,
    run_model,
)
from cnn_lightning.training.classifier import Classifier

PASS_THE_CLASS = "pass the class: load_classifier(path, model_class=MyNet), or --model my_package.MyNet on the command"


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint ``path`` means: the file itself, or a run folder's best checkpoint (else its last)."""
    path = Path(path)
    if path.is_dir():
        run = run_folder(path) or path
        found = best_checkpoint(run) or last_checkpoint(run)
        if found is None:
            raise ConfigError(f"{path} holds no checkpoint (looked in {run}/checkpoints). Pass a run or a .ckpt file.")
        return found
    return path


def saved_model_class(checkpoint: dict[str, Any], path: Path) -> type[Classifier]:
    """The class a checkpoint was saved from: its hyperparameters' ``_class_path`` (the CLI's), else its run's
    ``config.yaml``; one line naming the fix where neither says, or the class cannot be imported."""
    run = run_folder(path)
    class_path = checkpoint_model(checkpoint) or (run_model(run) if run is not None else None)
    if not class_path:
        raise ConfigError(
            f"{path} does not say which model class it holds (a checkpoint saved by a plain lightning.Trainer has no "
            f"_class_path among its hyperparameters): {PASS_THE_CLASS}."
        )
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)  # the class the checkpoint names, as Lightning does
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(
            f"{path} holds a {class_path}, which cannot be imported ({error}). Put the module that defines it on "
            f"PYTHONPATH, or {PASS_THE_CLASS}."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Classifier)):
        raise ConfigError(f"{path} holds a {class_path}, which is not a cnn_lightning Classifier.")
    return cls


def load_trained(
    path: str | Path, model_class: type[Classifier] | None = None
) -> tuple[Classifier, dict[str, Any], Path]:
    """The model a checkpoint or run holds, its weights loaded, in eval mode; with the checkpoint and its file.
    ``model_class`` replaces the class the checkpoint names (and is needed where it names none)."""
    file = checkpoint_file(path)
    checkpoint = load_checkpoint(file)
    cls = model_class or saved_model_class(checkpoint, file)
    try:
        model = cls(**checkpoint_settings(checkpoint))
    except TypeError as error:  # settings the passed class does not take
        raise ConfigError(
            f"{file}'s settings do not build a {cls.__name__} ({error}). Pass the class it holds."
        ) from None
    model.load_state_dict(model.upgrade_state_dict(checkpoint["state_dict"]))
    return model.eval(), checkpoint, file
