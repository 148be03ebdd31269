"""Checks of a model command's parsed config made before anything is built or written: settings Lightning or torch
accept at first and fail on later (a ``ZeroDivisionError`` mid-fit, an optimizer's ``ValueError`` once the run folder
exists) or run with and report nonsense (a batch larger than the dataset), and the files the command will write
(``predict``'s CSV, ``export``'s model), each checked for a place that takes them (:mod:`cnn_lightning.output_places`).
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from jsonargparse import Namespace

from cnn_lightning.data.fashion_mnist import RAW_FILES
from cnn_lightning.errors import ConfigError, require_positive
from cnn_lightning.output_places import check_folder, check_new_file
from cnn_lightning.runs import run_folder

# Trainer settings that must be at least this, which Lightning takes and fails on later (0 divides, in its loops).
TRAINER_MINIMUMS = {
    "accumulate_grad_batches": (1, "1: an optimizer step after every batch"),
    "check_val_every_n_epoch": (1, "1: validate after every epoch"),
    "log_every_n_steps": (1, "50: Lightning's default"),
    "num_sanity_val_steps": (-1, "-1: the whole validation set, 0: none"),
    "gradient_clip_val": (0, "0: no clipping"),
}
TRAINING_IMAGES = RAW_FILES["train-labels-idx1-ubyte"][0]


def check_before_run(config: Namespace, subcommand: str) -> None:
    """Refuse, with the flag and the fix, what would fail or mislead only once the command runs."""
    check_trainer_settings(config.trainer)
    check_optimizer(config.get("optimizer"), config.get("lr_scheduler"))
    if subcommand == "fit":
        check_batch_size(config.data)
    if subcommand == "predict" and (output := config.get("predictions", Namespace()).get("output")):
        check_output(output, what="the predictions", suffix=".csv", flag="--predictions.output")
    if subcommand == "export":
        check_export_output(config.get("output"), config.get("ckpt_path"))


def check_trainer_settings(trainer: Namespace) -> None:
    for name, (minimum, example) in TRAINER_MINIMUMS.items():
        value = trainer.get(name)
        if isinstance(value, int | float) and value < minimum:
            raise ConfigError(
                f"--trainer.{name} must be at least {minimum}, got {value}. Set it to {minimum} or more ({example})."
            )
    interval = trainer.get("val_check_interval")
    if interval is not None:
        require_positive(interval, name="val_check_interval", flag="--trainer.val_check_interval (or drop it)")


def check_optimizer(optimizer: Any, scheduler: Any) -> None:
    """Build the configured optimizer (and scheduler) on one throwaway parameter: torch checks its own settings in
    the constructor, so a negative learning rate or a beta outside [0, 1) is named now rather than after setup."""
    if not isinstance(optimizer, Namespace) and not isinstance(scheduler, Namespace):
        return
    import torch
    from lightning.pytorch.cli import instantiate_class

    parameters = [torch.nn.Parameter(torch.zeros(1))]
    built = torch.optim.SGD(parameters, lr=0.1)
    for flag, config, argument in (("--optimizer", optimizer, parameters), ("--lr_scheduler", scheduler, None)):
        if not isinstance(config, Namespace):
            continue
        try:
            built = instantiate_class(built if argument is None else argument, config)
        except ValueError as refused:
            settings = ", ".join(f"{k} {v}" for k, v in _non_defaults(config).items()) or "its defaults"
            raise ConfigError(
                f"{flag} {config.class_path} refused its settings ({settings}): {refused}. Fix the value with "
                f"{flag}.NAME (e.g. {flag}.lr 0.001); see python -m cnn_lightning fit --help."
            ) from None
        except Exception:  # not a value it refuses (one that needs the real model): the run itself will tell
            return


def _non_defaults(config: Namespace) -> dict[str, Any]:
    """The settings of a ``class_path``/``init_args`` config that differ from its class's defaults (the ones given)."""
    given = dict((config.get("init_args") or Namespace()).items())
    module, _, name = str(config.get("class_path")).rpartition(".")
    try:
        parameters = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    except (ImportError, AttributeError, ValueError, TypeError):
        return given
    return {k: v for k, v in given.items() if k not in parameters or parameters[k].default != v}


def check_batch_size(data: Namespace) -> None:
    """A batch larger than the training split trains on the whole split each step while the throughput counts the
    asked size: refused."""
    batch_size = data.get("batch_size")
    split = TRAINING_IMAGES if data.get("val_on_test") else TRAINING_IMAGES - (data.get("val_size") or 0)
    if isinstance(batch_size, int) and batch_size > split > 0:
        raise ConfigError(
            f"--data.batch_size {batch_size} is larger than the training split ({split:,} images): each step would "
            f"take the whole split and the examples/sec would count images never seen. Set --data.batch_size to at "
            f"most {split} (e.g. 256, the book's)."
        )


def check_output(output: str, *, what: str, suffix: str, flag: str) -> None:
    """A named file (it has a suffix and is not a folder) must not exist; a folder must take new files."""
    path = Path(output)
    fix = f"Pass another {flag}."
    if path.suffix and not path.is_dir():
        check_new_file(path, what=what, fix=fix)
    else:
        check_folder(path, what=what, fix=f"Pass another {flag} (a folder or a new {suffix} file).")


def check_export_output(output: str | None, ckpt_path: str | None) -> None:
    if output:
        check_output(output, what="the exported model", suffix=".onnx", flag="--output")
    elif ckpt_path and Path(ckpt_path).exists():
        checkpoint = Path(ckpt_path)
        folder = (run_folder(checkpoint) or checkpoint.parent) / "export"
        check_folder(folder, what="the exported model", fix="Pass --output with a writable folder or file.")
