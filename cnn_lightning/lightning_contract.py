"""The one place that reaches into Lightning below its documented API, pinned by tests/test_lightning_contract.py.

Everything else in the package uses Lightning's public API. What is here has no public equivalent in the
Lightning versions we test (pyproject.toml bounds them); when Lightning changes it, a function here raises
:class:`LightningContractError` naming what moved, and the contract test fails by the function's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.tuner import batch_size_scaling


class LightningContractError(RuntimeError):
    """A Lightning internal the project relies on has changed: the installed Lightning is outside the tested range."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"Lightning {L.__version__} changed {what}, which cnn_lightning relies on (lightning_contract.py). "
            "Install the Lightning version pyproject.toml names (pip install -e .)."
        )


def _attribute(owner: Any, name: str, what: str) -> Any:
    """``owner.name``, or a :class:`LightningContractError` naming ``what`` moved."""
    try:
        return getattr(owner, name)
    except AttributeError:
        raise LightningContractError(what) from None


def rebuild_train_loader(trainer: L.Trainer) -> None:
    """Rebuild the fit loop's training loader from the data module's current settings (e.g. a new batch size).

    Lightning builds the loader once per fit; its batch-size finder rebuilds it between trials with this very
    function, which it does not export.
    """
    _attribute(batch_size_scaling, "_reset_dataloaders", "the batch-size finder's loader reset")(trainer)


def _batch_progress(trainer: L.Trainer) -> Any:
    loop = _attribute(trainer.fit_loop, "epoch_loop", "the fit loop's epoch loop")
    return _attribute(loop, "batch_progress", "the epoch loop's batch progress")


def completed_train_batches(trainer: L.Trainer) -> int:
    """Training batches the fit loop has finished in the current epoch (0 on a fresh epoch, more on a resume)."""
    return _batch_progress(trainer).current.completed


def processed_train_batches(trainer: L.Trainer) -> int:
    """Training batches of the current epoch trained so far, the one ending included (from ``on_train_batch_end``:
    a chunk of optimizer steps counts as its batches)."""
    return _batch_progress(trainer).current.processed


def count_optimizer_step(trainer: L.Trainer) -> None:
    """Count one optimizer step the engine took itself where automatic optimization counts its own (``global_step``
    reads it), as ``_AutomaticOptimization`` does after each step."""
    loop = trainer.fit_loop.epoch_loop.automatic_optimization
    progress = _attribute(loop, "optim_progress", "automatic optimization's step progress").optimizer.step
    progress.increment_ready()
    progress.increment_completed()


def count_extra_batches(trainer: L.Trainer, batches: int) -> None:
    """Count a Lightning batch that trained ``batches + 1`` batches (a chunk) as that many: the fit loop's batch
    counters (resume position, ``limit_train_batches``, the epoch's end) and the logging step (scalars plotted
    against optimizer steps) advance by the extra ones; Lightning counts the one it knows of."""
    if batches:
        progress = _batch_progress(trainer)
        progress.increment_by(batches, is_last_batch=progress.is_last_batch)
        trainer.fit_loop.epoch_loop._batches_that_stepped += batches


def subcommand_parser(cli: LightningCLI, subcommand: str) -> Any:
    """The jsonargparse parser LightningCLI built for ``subcommand`` (``fit``, ``predict``, ...): its options name
    what the command accepts. LightningCLI keeps it in an attribute it does not document."""
    return _attribute(cli, "_subcommand_parsers", "LightningCLI's parsers of its subcommands")[subcommand]


def stop_logging_graph(logger: Any) -> None:
    """Make a ``TensorBoardLogger`` log no more model graphs (it logs one at the start of every stage, so the test
    after a fit would log the run's second). Its ``log_graph`` argument is kept in an attribute it does not document."""
    if isinstance(logger, TensorBoardLogger):
        _attribute(logger, "_log_graph", "TensorBoardLogger's log_graph setting")
        logger._log_graph = False


def format_summary_table(*args: Any) -> str:
    """The text of Lightning's model summary table from its rows, as ``ModelSummary.summarize`` formats it (a
    function Lightning does not export)."""
    from lightning.pytorch.utilities.model_summary import model_summary

    return _attribute(model_summary, "_format_summary_table", "the model summary's table formatter")(*args)


def checkpoint_step_interval(callback: ModelCheckpoint) -> int:
    """A ``ModelCheckpoint``'s ``every_n_train_steps`` (kept in an attribute it does not document)."""
    return int(_attribute(callback, "_every_n_train_steps", "ModelCheckpoint's every_n_train_steps") or 0)


def plugin_compute_dtype(plugin: Precision) -> torch.dtype:
    """The dtype a precision plugin computes in, as Lightning's ``ThroughputMonitor`` reads it (a function it does
    not export)."""
    from lightning.pytorch.callbacks import throughput_monitor

    return _attribute(throughput_monitor, "_plugin_to_compute_dtype", "the precision plugins' compute dtype")(plugin)


class ConfigFromUnnamedCheckpoints:
    """A mixin for ``LightningCLI`` (before it in the bases): its reading of a checkpoint's hyperparameters into the
    config (``_parse_ckpt_path``, undocumented), also for a checkpoint whose hyperparameters do not name their class
    (``_class_path``: one saved by a plain ``lightning.Trainer``). They then configure the class ``--model`` names;
    LightningCLI itself would refuse every one of them as an option of no class."""

    def _parse_ckpt_path(self) -> None:
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else None
        path = config.get("ckpt_path") if config is not None else None
        if path and Path(path).is_file():
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            settings = {k: v for k, v in (checkpoint.get("hyper_parameters") or {}).items() if not k.startswith("_")}
            named = (checkpoint.get("hyper_parameters") or {}).get("_class_path")
            model = config.get("model")
            if settings and not named and isinstance(model, Namespace) and model.get("class_path"):
                model = {"class_path": model.class_path, "dict_kwargs": settings}
                self.config = self.parser.parse_object({subcommand: {"model": model}}, self.config)
                return
        _attribute(LightningCLI, "_parse_ckpt_path", "LightningCLI's reading of a checkpoint's hyperparameters")
        super()._parse_ckpt_path()  # type: ignore[misc]
