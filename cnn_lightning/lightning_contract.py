"""The one place that reaches into Lightning below its documented API, pinned by tests/test_lightning_contract.py.

Everything else in the package uses Lightning's public API. What is here has no public equivalent in the
Lightning versions we test (pyproject.toml bounds them); when Lightning changes it, that test fails by name.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.tuner import batch_size_scaling

# The attribute Lightning sets on the LightningModule around every hook call (twice a call, dozens of times a step):
# Classifier sets it as a plain attribute, skipping nn.Module's type checks (README "Performance").
HOOK_NAME_ATTRIBUTE = "_current_fx_name"


def rebuild_train_loader(trainer: L.Trainer) -> None:
    """Rebuild the fit loop's training loader from the data module's current settings (e.g. a new batch size).

    Lightning builds the loader once per fit; its batch-size finder rebuilds it between trials with this very
    function, which it does not export.
    """
    batch_size_scaling._reset_dataloaders(trainer)


def completed_train_batches(trainer: L.Trainer) -> int:
    """Training batches the fit loop has finished in the current epoch (0 on a fresh epoch, more on a resume)."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.completed


def subcommand_parser(cli: LightningCLI, subcommand: str) -> Any:
    """The jsonargparse parser LightningCLI built for ``subcommand`` (``fit``, ``predict``, ...): its options name
    what the command accepts. LightningCLI keeps it in an attribute it does not document."""
    return cli._subcommand_parsers[subcommand]


def stop_logging_graph(logger: Any) -> None:
    """Make a ``TensorBoardLogger`` log no more model graphs (it logs one at the start of every stage, so the test
    after a fit would log the run's second). Its ``log_graph`` argument is kept in an attribute it does not document."""
    if hasattr(logger, "_log_graph"):
        logger._log_graph = False


def format_summary_table(*args: Any) -> str:
    """The text of Lightning's model summary table from its rows, as ``ModelSummary.summarize`` formats it (a
    function Lightning does not export)."""
    from lightning.pytorch.utilities.model_summary.model_summary import _format_summary_table

    return _format_summary_table(*args)
