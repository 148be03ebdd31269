"""What a checkpoint saved by any version needs to load: its network weights under the names this version gives them
(checkpoints written before the book's stages had names load unchanged), the class it was saved from, and the
random generators' state."""

from __future__ import annotations

import importlib
import io
from pathlib import Path
from typing import Any

import torch

from cnn_lightning.errors import ConfigError
from cnn_lightning.legacy import upgrade_hyperparameters
from cnn_lightning.runs import CLASS_KEY, checkpoint_model


def renamed_network_keys(
    state: dict[str, torch.Tensor], current: dict[str, torch.Tensor], *, model_name: str
) -> dict[str, torch.Tensor]:
    """``state`` (a checkpoint's) with the network's keys as ``current`` (the model's own state) names them.

    Before the stages had names, weights were keyed by position (``net.13.weight``, DenseNet's
    ``net.1.net.0.2.weight``); such a state holds the same tensors in the same order, so it is renamed by
    position once every shape matches. Anything else that does not match is refused with the reason.
    """
    old = [key for key in state if key.startswith("net.")]
    new = [key for key in current if key.startswith("net.")]
    if set(old) == set(new):
        return state
    shapes_match = len(old) == len(new) and all(
        tuple(state[a].shape) == tuple(current[b].shape) for a, b in zip(old, new, strict=True)
    )
    if not shapes_match or not any(key.split(".")[1].isdigit() for key in old):
        raise ConfigError(
            f"The checkpoint's network does not match {model_name} as configured: it has "
            f"{len(old)} weight tensors ({old[0] if old else 'none'} first), this model {len(new)} ({new[0]} "
            "first). Use the configuration the checkpoint was trained with (its run's config.yaml)."
        )
    # Written before the stages were named (positional keys): same layers, same order.
    renamed = dict(zip(old, new, strict=True))
    return {renamed.get(key, key): value for key, value in state.items()}


def checkpoint_class(checkpoint: dict[str, Any], checkpoint_path: Any) -> type:
    """The LightningModule class a checkpoint was saved from, by the path LightningCLI recorded (0.1.0's paths too)."""
    module, _, name = str(checkpoint_model(checkpoint) or "").rpartition(".")
    if not module:
        raise ConfigError(f"{checkpoint_path} names no model class. Call the model's own load_from_checkpoint.")
    return getattr(importlib.import_module(module), name)  # the path is data here: the checkpoint names the class


def load_classifier(cls: type, base: type, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:
    """``cls.load_from_checkpoint`` as Lightning does it, for a checkpoint of any version: called on ``base``
    (``Classifier``), the class the checkpoint names; hyperparameters an earlier version saved, as today's model takes
    them (legacy.upgrade_hyperparameters; read through memory-mapping, so only they are read twice)."""
    if isinstance(checkpoint_path, str | Path):
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True, mmap=True)
        cls = checkpoint_class(checkpoint, checkpoint_path) if cls is base else cls
        hparams = checkpoint.get("hyper_parameters", {})
        if upgrade_hyperparameters(hparams) != hparams:
            checkpoint["hyper_parameters"] = upgrade_hyperparameters(hparams)
            checkpoint_path = io.BytesIO()
            torch.save(checkpoint, checkpoint_path)
            checkpoint_path.seek(0)
    return super(base, cls).load_from_checkpoint(checkpoint_path, *args, **kwargs)


def record_class(checkpoint: dict[str, Any], model: Any) -> None:
    """Name ``model``'s class in ``checkpoint`` beside what LightningCLI records (``_class_path`` among the
    hyperparameters, which a plain ``lightning.Trainer`` leaves out), so that ``load_classifier`` and ``predict`` take
    a checkpoint of either (``runs.checkpoint_model`` reads both)."""
    checkpoint[CLASS_KEY] = f"{type(model).__module__}.{type(model).__qualname__}"


def save_random_state(checkpoint: dict[str, Any], device: torch.device) -> None:
    """Dropout draws from the global generators: keep their state so that a resumed run draws the same masks."""
    checkpoint["torch_rng_state"] = torch.get_rng_state()
    if torch.cuda.is_available() and device.type == "cuda":
        checkpoint["cuda_rng_state"] = torch.cuda.get_rng_state(device)


def restore_random_state(checkpoint: dict[str, Any], device: torch.device) -> None:
    """The generators as :func:`save_random_state` kept them (a checkpoint of an older version may have neither)."""
    if "torch_rng_state" in checkpoint:
        torch.set_rng_state(checkpoint["torch_rng_state"])
    if "cuda_rng_state" in checkpoint and torch.cuda.is_available():
        torch.cuda.set_rng_state(checkpoint["cuda_rng_state"], device)


def class_names(model: Any) -> list[str]:
    """``model``'s class names in label order: those of the checkpoint it was loaded from (its dataset's: MNIST's
    digits, say), else its record's (Fashion-MNIST's), else numbered."""
    names = getattr(model, "loaded_categories", None) or (model.record.categories if model.record else None)
    return list(names) if names else [str(i) for i in range(model.hparams.num_classes)]
