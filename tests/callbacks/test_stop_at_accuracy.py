"""``fit --stop_at.accuracy``: the fit stops at the first validation that reaches the target, tests there, and the
closing line, TensorBoard's HParams metrics and ``report`` give the time from the process's start to the target."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cnn_lightning.__main__ import main
from cnn_lightning.callbacks import StopAtAccuracy
from cnn_lightning.callbacks.stop_at_accuracy import process_start_time
from cnn_lightning.commands.fit import make_cli
from cnn_lightning.errors import ConfigError

BATCHES = 4


def fit(data_dir: Path, target: str, epochs: int = 3) -> object:
    return make_cli(["fit", "--config", "lenet_bn.yaml", "--stop_at.accuracy", target,
                     "--trainer.max_epochs", str(epochs), "--trainer.limit_train_batches", str(BATCHES),
                     "--trainer.limit_val_batches", "20", "--trainer.limit_test_batches", "2",
                     "--data.batch_size", "32", "--data.data_dir", str(data_dir), "--trainer.accelerator", "cpu",
                     "--trainer.enable_progress_bar", "false"])  # fmt: skip


def test_a_tiny_target_stops_the_fit_at_its_first_validation_and_times_it(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    started = time.time()
    cli = fit(data_dir, "0.05")  # 640 validation images: even one class for all is about 0.1
    stopper = next(cb for cb in cli.trainer.callbacks if isinstance(cb, StopAtAccuracy))
    assert cli.trainer.current_epoch == 1 and cli.trainer.global_step == BATCHES  # one epoch of three
    assert stopper.target_epoch == 1
    assert time.time() - process_start_time() >= stopper.seconds_to_target >= time.time() - started - 60
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"val acc 0.050 reached in epoch 1, {stopper.seconds_to_target:,.1f} s after the start"
    assert lines[-3].startswith("loss ") and "test acc" in lines[-3]  # tested at the weights it stopped with
    main(["report", "lightning_logs", "--out", str(tmp_path / "report")])
    table = (tmp_path / "report" / "report.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    header, row = (line.split(" | ") for line in (lines[0], lines[1]))
    cell = row[header.index("time to target")]
    assert cell == f"0.050 in {stopper.seconds_to_target:,.0f} s (epoch 1)", table


def test_a_target_not_reached_says_so_and_the_fit_runs_its_epochs(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    cli = fit(data_dir, "1.0", epochs=2)
    assert cli.trainer.current_epoch == 2 and cli.trainer.global_step == 2 * BATCHES
    assert capsys.readouterr().out.strip().splitlines()[-1] == "val acc 1.000 not reached"


def test_a_target_outside_0_1_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--stop_at.accuracy takes a fraction in \(0, 1\], got 90"):
        StopAtAccuracy(90)
    assert StopAtAccuracy().final_metrics() == {}  # no target: nothing stops, nothing reported
