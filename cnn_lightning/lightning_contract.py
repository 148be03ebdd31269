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


def processed_train_batches(trainer: L.Trainer) -> int:
    """Training batches of the current epoch trained so far, the one ending included (from ``on_train_batch_end``:
    a chunk of optimizer steps counts as its batches)."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.processed


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


def count_chunk_as_steps(trainer: L.Trainer, extra_steps: int) -> None:
    """Count a training batch that ran ``extra_steps + 1`` optimizer steps (a chunk) as that many batches: the fit
    loop's batch counters (resume position, ``limit_train_batches``, the epoch's end), the logging step
    (``_batches_that_stepped``: scalars plotted against optimizer steps) and the automatic-optimization step count
    (so a checkpoint resumes the same ``global_step`` whether or not the next run chunks its steps)."""
    loop = trainer.fit_loop.epoch_loop
    if extra_steps:
        loop.batch_progress.increment_by(extra_steps, is_last_batch=loop.batch_progress.is_last_batch)
        loop._batches_that_stepped += extra_steps
    automatic = loop.automatic_optimization.optim_progress.optimizer.step.total
    automatic.ready = automatic.completed = loop.manual_optimization.optim_step_progress.total.completed


def adopt_optimizer_steps(trainer: L.Trainer) -> None:
    """Before a fit switches to manual optimization (chunked steps): ``global_step`` then counts the manual loop's
    steps, which a checkpoint of an automatic-optimization run left at 0; start them where the run stands."""
    loop = trainer.fit_loop.epoch_loop
    manual = loop.manual_optimization.optim_step_progress.total
    manual.ready = manual.completed = max(manual.completed, loop.automatic_optimization.optim_progress.optimizer_steps)


def count_direct_steps(trainer: L.Trainer, steps: int) -> None:
    """Count ``steps`` optimizer steps taken without the ``LightningOptimizer`` (a replayed CUDA graph's, a chunk's
    plain steps: training/step_hooks.py), as its ``step`` counts one per call in manual optimization's step
    progress, which ``global_step`` reads."""
    progress = trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
    for _ in range(steps):
        progress.increment_ready()
        progress.increment_completed()


def checkpoint_step_interval(callback: Any) -> int:
    """A ``ModelCheckpoint``'s ``every_n_train_steps`` (kept in an attribute it does not document)."""
    return int(getattr(callback, "_every_n_train_steps", 0) or 0)
