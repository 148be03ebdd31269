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
from tests.conftest import run_cli


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


@pytest.mark.slow  # two fits timed by the clock, about 12 s: the full suite runs it
@pytest.mark.parametrize("min_interval", [3600.0, 0.0])
def test_steps_build_no_profiler_context_and_redraw_the_bar_by_time(
    data_dir: Path, tmp_path: Path, monkeypatch, min_interval: float
) -> None:
    """Lightning wraps each hook call in ``trainer.profiler.profile``: the default one hands out one shared
    context; the bar redraws by elapsed time, not every batch, and still ends showing the batches trained."""
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_steps", "40",
                    "--trainer.limit_val_batches", "0", "--data.batch_size", "32",
                    "--trainer.strategy.steps_per_batch", "1"], run=False)  # fmt: skip  # Lightning's hooks per step
    profiler, bar = cli.trainer.profiler, cli.trainer.progress_bar_callback
    assert profiler.profile("[Callback]A.on_train_batch_end") is profiler.profile("[Strategy]B.training_step")
    bar.min_interval = min_interval
    count = CountRedraws(5, 34)
    cli.trainer.callbacks.append(count)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert count.redraws == (0 if min_interval else 60)  # as Lightning draws: count, then metrics, every batch
    assert bar.train_progress_bar.n == 40


class TerminateAt(L.Callback):
    def on_before_optimizer_step(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == 4:  # during step 5
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
    cli.trainer.fit(
        cli.model, datamodule=cli.datamodule, ckpt_path="lightning_logs/lenet/version_0/checkpoints/last.ckpt"
    )
    captured = capfd.readouterr()
    bar = (captured.out + captured.err).replace("\r", "\n")  # Lightning's tqdm writes to stdout
    assert re.search(r"Epoch 0: 100%\|[^|]*\| 12/12", bar)
    assert not re.search(r"Training: \|[^|]*\| [1-9]", bar)  # never a count of batches without the epoch


@pytest.mark.slow  # a whole fit on a terminal, 15 s: the full suite runs it
def test_the_screen_reads_in_80_columns(data_dir: Path, tmp_path: Path) -> None:
    """fit's bar holds the epoch, the steps done and total, loss, accuracy and examples/sec in 80 columns, without
    the logger's v_num; the run ends with its closing line alone; summary prints its table and nothing else."""
    args = ["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_epochs", "2",
            "--trainer.limit_train_batches", "30", "--trainer.limit_val_batches", "5",
            "--trainer.limit_test_batches", "5"]  # fmt: skip
    done = run_cli(*args, cwd=tmp_path, env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr[-2000:]
    frames = [frame for frame in re.split(r"[\r\n]", done.stdout) if frame.startswith("Epoch 1")]
    assert frames and max(len(frame) for frame in frames) <= 80, max(frames, key=len)
    assert all(f"{name}=" in frames[-1] for name in ("loss", "acc", "val_acc", "ex/s")) and "30/30" in frames[-1]
    assert "v_num" not in done.stdout and "`Trainer.fit` stopped" not in done.stdout + done.stderr
    accuracy, speed = re.split(r"[\r\n]", done.stdout.rstrip())[-2:]  # the closing line's two, each alone
    assert accuracy.startswith("loss ") and "test acc" in accuracy and "examples/sec on cpu" in speed
    # The bar's last state shows the last epoch's figures, as the closing line does (not the epoch before's).
    loss, train_acc = re.search(r"^loss ([\d.]+), train acc ([\d.]+)", accuracy).groups()
    assert f"loss={loss}" in frames[-1] and f" acc={train_acc}" in frames[-1], (frames[-1], accuracy)
    screen = done.stdout + done.stderr
    assert "| net " in screen and "EpochMetrics" not in screen and "Modules in train mode" not in screen
    assert max(len(line) for line in re.split(r"[\r\n]", screen)) <= 80  # the table and every line of the fit
    for note in ("Skipping setting a default", "TPU available", "Tip:", "log_every_n_steps"):
        assert note not in screen, note  # Lightning's notes that leave the user nothing to do
    summary = run_cli("summary", "--config", "lenet.yaml", cwd=tmp_path)
    assert summary.returncode == 0 and summary.stdout.startswith("LeNet (cnn_lightning.models.lenet.LeNet)")
    assert "Seed set to" not in summary.stdout + summary.stderr and "GPU available" not in summary.stderr
