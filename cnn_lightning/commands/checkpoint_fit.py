"""A checkpoint checked against what will read it, before Lightning touches it (and before a run folder exists):
the Lightning version that wrote it (runs.check_lightning_version), and its weights against the model the command
builds, on the meta device (no memory, no initialization): Lightning's strict load would refuse a ``size mismatch for
net.features.0.weight`` only after the run had begun."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from cnn_lightning.errors import ConfigError
from cnn_lightning.models import MODELS
from cnn_lightning.runs import check_lightning_version, checkpoint_settings

SHOWN = 3  # mismatched tensors named in the message; the rest are counted


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
    if class_path.rsplit(".", 1)[-1] in MODELS:
        return MODELS[class_path.rsplit(".", 1)[-1]]
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
