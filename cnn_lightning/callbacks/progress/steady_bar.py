"""Lightning's tqdm progress bar, redrawn by time rather than after every batch."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

from cnn_lightning.lightning_contract import processed_train_batches


class SteadyProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, redrawn at most every ``min_interval`` seconds (as tqdm itself paces ``update``) and on
    each bar's first and last batch, instead of on every ``refresh_rate``-th batch whatever the pace: a redraw
    formats the bar and the metrics and writes to the terminal, a sizeable share of a small model's step on a fast
    GPU (``benchmarks/step_cuts.py``; docs/measurements.md, "Per-step costs"). Public hooks only: each per-batch
    hook runs when a redraw is due.

    Args:
        refresh_rate: redraw on every ``refresh_rate``-th batch at most (0 turns the bar off), as Lightning's.
        process_position: as Lightning's ``TQDMProgressBar``.
        leave: as Lightning's ``TQDMProgressBar``.
        min_interval: seconds between two redraws of the same bar, at least.
    """

    # Lightning's less the percentage and the batches a second (examples a second are among the metrics): the epoch,
    # the steps done and total, the time, loss, accuracy and examples a second fit an 80-column terminal.
    BAR_FORMAT = "{desc} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}"
    # The logged metrics the bar shows, in this order (not v_num: the run's folder says the version).
    SHORT_NAMES: ClassVar[dict[str, str]] = {"train/loss": "loss", "train/acc": "acc", "val/acc": "val_acc"}
    # It counts the batches a chunk of optimizer steps trained (cnn_lightning.engine), not Lightning's batches.
    handles_chunks = True

    def __init__(
        self, refresh_rate: int = 1, process_position: int = 0, leave: bool = False, min_interval: float = 0.1
    ) -> None:
        super().__init__(refresh_rate=refresh_rate, process_position=process_position, leave=leave)
        self.min_interval = min_interval
        self._last_redraw = float("-inf")
        self._trained = 0  # batches of this epoch trained, for the epoch's last redraw

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Loss and accuracy under short names, examples a second while training; not the logger's ``v_num``."""
        metrics = super().get_metrics(trainer, pl_module)
        # Three decimals, as the closing line prints them (Lightning's bar shows three significant digits: 2.32).
        shown = {short: f"{float(metrics[key]):.3f}" for key, short in self.SHORT_NAMES.items() if key in metrics}
        shown |= {key: value for key, value in metrics.items() if "/" not in key and key != "v_num"}
        bar = self._train_progress_bar if trainer.training else None
        batch = getattr(trainer.datamodule, "batch_size", None)
        if bar is not None and batch and bar.format_dict["elapsed"] > 0:  # Lightning sets n, so tqdm has no rate
            shown["ex/s"] = f"{bar.format_dict['n'] * batch / bar.format_dict['elapsed']:,.0f}"
        return shown

    def init_test_tqdm(self) -> Any:
        bar = super().init_test_tqdm()
        bar.leave = False  # gone when done: the closing line or the metrics table follows
        return bar

    def init_predict_tqdm(self) -> Any:
        bar = super().init_predict_tqdm()
        bar.leave = False  # gone when done: the line naming the predictions file follows
        return bar

    def _due(self, current: int, total: int | float) -> bool:
        """Whether batch ``current`` of ``total`` gets a redraw: the bar's first and last, else when due by time."""
        if not self.refresh_rate or (current % self.refresh_rate and current != total):
            return False
        now = time.monotonic()
        if current in (1, total) or now - self._last_redraw >= self.min_interval:
            self._last_redraw = now
            return True
        return False

    # Each bar's per-batch hook runs only when a redraw is due; Lightning draws batch_idx + 1 as the count. A chunk of
    # optimizer steps (cnn_lightning.engine) counts as the batches it trained.
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:  # fmt: skip
        self._trained = processed_train_batches(trainer)
        if self._due(self._trained, self.total_train_batches):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, self._trained - 1)

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        if self._due(batch_idx + 1, self.total_val_batches_current_dataloader):
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        if self._due(batch_idx + 1, self.total_test_batches_current_dataloader):
            super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_predict_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        if self._due(batch_idx + 1, self.total_predict_batches_current_dataloader):
            super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # An epoch cut short (max_steps, an interrupt) ends between redraws: show where it really stopped.
        bar = self.train_progress_bar
        if bar is not None and not bar.disable and self._trained:
            bar.n, self._trained = self._trained, 0
            bar.refresh()
        super().on_train_epoch_end(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The model logs an epoch's training loss and accuracy in its own on_train_epoch_end, which Lightning calls
        # after the callbacks' (this bar's above): the last epoch's reach the bar here, so that its last state shows
        # the figures the closing line prints, not the epoch before's.
        bar = self._train_progress_bar
        if bar is not None and not bar.disable:
            bar.set_postfix(self.get_metrics(trainer, pl_module))
        super().on_train_end(trainer, pl_module)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # The bars end their lines (training's stays, the others clear), so that the error that follows (a full disk,
        # a divergence, a stop) starts on a line of its own rather than at the end of the bar's.
        bars = (self._val_progress_bar, self._test_progress_bar, self._predict_progress_bar, self._train_progress_bar)
        for bar in bars:
            if bar is not None:
                bar.close()
