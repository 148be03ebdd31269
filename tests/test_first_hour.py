"""What a new user met in their first hour (issue 13), each caught here: refused trainer settings, flags a
checkpoint overrides, litter, noise, the progress bar after a resume, the precision picked, README command 1."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnn_lightning.cli import make_cli
from cnn_lightning.precision import default_precision
from tests.conftest import REPO, run_cli
from tests.test_errors import fails

SHORT = ("--trainer.max_steps", "2", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1")


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--trainer.accelerator", "gpu", "--trainer.accelerator cpu"),
        ("--trainer.devices", "0", "--trainer.devices"),
        ("--trainer.num_nodes", "0", "--trainer.num_nodes"),
    ],
)
def test_trainer_settings_lightning_refuses_are_one_line(capsys, flag: str, value: str, named: str) -> None:
    if value == "gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    message = fails(capsys, "fit", "--config", "lenet.yaml", flag, value)
    assert message.startswith("error: Lightning refused the trainer settings:") and named in message


def test_a_checkpoint_never_silently_overrides_a_setting(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    make_cli(["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), *SHORT])
    capsys.readouterr()
    base = (
        "test",
        "--config",
        "lenet.yaml",
        "--ckpt_path",
        "lightning_logs/version_0",
        "--data.data_dir",
        str(data_dir),
    )
    message = fails(capsys, *base, "--model.init_args.input_size", "32")
    assert "--model.init_args.input_size 32 (checkpoint: 28)" in message and "other shapes" in message
    done = run_cli(*base, "--model.init_args.lr", "0.3", "--trainer.limit_test_batches", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "The checkpoint's lr 0.9 replaces --model.init_args.lr 0.3." in done.stdout + done.stderr


def test_runs_without_a_logger_keep_their_files_in_a_run_folder(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        make_cli(
            ["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.logger", "false", *SHORT]
        )
    make_cli(["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.fast_dev_run", "true"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lightning_logs"]  # nothing in the working directory
    for run in ("version_0", "version_1"):  # one folder each; neither calls itself a resume
        files = sorted(p.name for p in (tmp_path / "lightning_logs" / run).iterdir())
        assert files == ["checkpoints", "config.yaml"], files
    assert len(list((tmp_path / "lightning_logs").iterdir())) == 2  # fast_dev_run left nothing


def test_the_first_screen_carries_no_known_noise(data_dir: Path, tmp_path: Path) -> None:
    done = run_cli("fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), *SHORT, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for noise in ("torch.jit.trace", "LeafSpec", "litlogger", "not supported by the model summary"):
        assert noise not in done.stdout + done.stderr, noise


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


def test_precision_is_bf16_where_the_hardware_computes_it() -> None:
    assert default_precision("cpu", flags={"avx512f", "avx512_bf16"}) == "bf16-mixed"
    assert default_precision("cpu", flags={"amx_bf16", "amx_tile"}) == "bf16-mixed"
    assert default_precision("cpu", flags={"avx512f", "avx2"}) == "32-true"
    assert default_precision("mps", flags={"avx512_bf16"}) == "32-true"
    if not torch.cuda.is_available():
        assert default_precision("auto", flags=set()) == "32-true"
    explicit = make_cli(["--config", "lenet.yaml", "--trainer.precision", "32-true"], run=False)
    assert str(explicit.trainer.precision) == "32-true"  # the book's numerics stay one flag away


def test_readme_commands_refresh_the_package_lists_first() -> None:
    readme = (REPO / "README.md").read_text()
    commands = [line for line in readme.splitlines() if "apt-get install" in line][:2]
    assert len(commands) == 2
    for command in commands:
        assert command.index("apt-get update") < command.index("apt-get install"), command
