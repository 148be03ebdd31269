"""The progress bar: redrawn by time (no profiler context built per step either), and its epoch after a mid-epoch
resume."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnn_lightning.commands.fit import make_cli


class CountRedraws(L.Callback):
    """Counts redraws of the training bar from the start of batch ``first`` to the end of batch ``last``."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last, self.redraws, self.counting = first, last, 0, False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        bar = trainer.progress_bar_callback.train_progress_bar
        refresh = bar.refresh

        def counted(*args, **kwargs):
            self.redraws += self.counting
            return refresh(*args, **kwargs)

        bar.refresh = counted

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.counting = self.counting or batch_idx == self.first

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        self.counting = self.counting and args[-1] != self.last


@pytest.mark.parametrize("min_interval", [3600.0, 0.0])
def test_steps_build_no_profiler_context_and_redraw_the_bar_by_time(
    data_dir: Path, tmp_path: Path, monkeypatch, min_interval: float
) -> None:
    """Lightning wraps each hook call in ``trainer.profiler.profile``: the default one hands out one shared
    context; the bar redraws by elapsed time, not every batch, and still ends showing the batches trained."""
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_steps", "40",
                    "--trainer.limit_val_batches", "0", "--data.batch_size", "32"], run=False)  # fmt: skip
    profiler, bar = cli.trainer.profiler, cli.trainer.progress_bar_callback
    assert profiler.profile("[Callback]A.on_train_batch_end") is profiler.profile("[Strategy]B.training_step")
    bar.min_interval = min_interval
    count = CountRedraws(5, 34)
    cli.trainer.callbacks.append(count)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert count.redraws == (0 if min_interval else 60)  # as Lightning draws: count, then metrics, every batch
    assert bar.train_progress_bar.n == 40


class TerminateAt(L.Callback):
    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == 5:
            signal.raise_signal(signal.SIGTERM)


def test_the_progress_bar_knows_its_epoch_after_a_mid_epoch_resume(
    data_dir: Path, tmp_path: Path, monkeypatch, capfd
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.limit_train_batches", "12",
            "--trainer.limit_val_batches", "1", "--trainer.max_epochs", "1",
            "--trainer.callbacks+=lightning.pytorch.callbacks.TQDMProgressBar"]  # fmt: skip
    cli = make_cli(args, run=False)
    cli.trainer.callbacks.append(TerminateAt())
    with pytest.raises(SIGTERMException):
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    capfd.readouterr()
    cli = make_cli(args, run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path="lightning_logs/version_0/checkpoints/last.ckpt")
    captured = capfd.readouterr()
    bar = (captured.out + captured.err).replace("\r", "\n")  # Lightning's tqdm writes to stdout
    assert re.search(r"Epoch 0: 100%\|[^|]*\| 12/12", bar)
    assert not re.search(r"Training: \|[^|]*\| [1-9]", bar)  # never a count of batches without the epoch
