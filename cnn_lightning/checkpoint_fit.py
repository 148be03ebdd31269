"""A checkpoint checked against what will read it, before Lightning touches it (and before a run folder exists):

* the Lightning version that wrote it: Lightning migrates its own older checkpoints in place and fails inside that
  migration (a ``KeyError`` on loop state) for one claiming a version it cannot migrate, or with ``InvalidVersion``
  for one claiming none; this project's checkpoints are written by Lightning 2.x.
* its weights against the model the command builds, on the meta device (no memory, no initialization): Lightning's
  strict load would refuse a ``size mismatch for net.features.0.weight`` only after the run had begun.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from cnn_lightning.errors import ConfigError

VERSION_KEY = "pytorch-lightning_version"
OLDEST, BEYOND = Version("2.0"), Version("3.0")  # the Lightning versions whose checkpoints this project reads
SHOWN = 3  # mismatched tensors named in the message; the rest are counted


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


def check_checkpoint_fits(path: str | Path, checkpoint: dict[str, Any], model: Any) -> None:
    """Refuse a checkpoint the configured ``model`` (the config's ``model`` namespace, or None: the checkpoint's own
    class) cannot load: a version Lightning cannot resume, weights missing, unexpected or of other shapes. The model
    is built as LightningCLI builds it, the checkpoint's hyperparameters over the configured settings."""
    check_lightning_version(checkpoint, path, required=True)
    class_path = getattr(model, "class_path", None) or checkpoint.get("hyper_parameters", {}).get("_class_path")
    model_class = _importable(class_path)
    if model_class is None:
        return  # a class this process cannot import is refused by the CLI itself
    asked = getattr(model, "init_args", None)
    asked = asked.as_dict() if hasattr(asked, "as_dict") else dict(asked or {})
    import torch

    from cnn_lightning.runs import checkpoint_settings  # here: runs reads checkpoints through this module

    held = checkpoint_settings(checkpoint)  # as the model takes them (the project upgrades older checkpoints' own)
    try:
        with torch.device("meta"):
            built = model_class(**{**asked, **held})
    except ConfigError:
        raise
    except Exception:  # settings the model itself refuses: its own message comes when the CLI builds it
        return
    expected = built.state_dict()
    state = dict(checkpoint.get("state_dict", {}))
    if hasattr(built, "upgrade_state_dict"):
        state = built.upgrade_state_dict(state)  # weights saved under older names (saved_checkpoints)
    problems = [
        f"{key} is {list(state[key].shape)} in the checkpoint, {list(expected[key].shape)} in the model"
        for key in expected
        if key in state and hasattr(state[key], "shape") and tuple(state[key].shape) != tuple(expected[key].shape)
    ]
    problems += [f"the checkpoint lacks {key}" for key in expected if key not in state]
    problems += [f"the model has no {key}" for key in state if key not in expected]
    if problems:
        more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        name = class_path.rsplit(".", 1)[-1]
        raise ConfigError(
            f"Checkpoint {path} does not fit {name} as configured: {'; '.join(problems[:SHOWN])}{more}. Use the "
            "configuration it was trained with (its run's config.yaml), or a checkpoint of this model."
        )


def _importable(class_path: str | None) -> type | None:
    """The class ``class_path`` names (a bare model name is one of the book's), or None where it does not import."""
    if not class_path:
        return None
    from cnn_lightning.models import MODELS

    if class_path.rsplit(".", 1)[-1] in MODELS:
        return MODELS[class_path.rsplit(".", 1)[-1]]
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
