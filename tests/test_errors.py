"""Bad input: one clear message naming the problem and the fix, a non-zero exit, nothing overwritten."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import pytest
import torch

from cnn_lightning.__main__ import main
from cnn_lightning.callbacks.run_checkpoint import RunCheckpoint
from cnn_lightning.commands.cli_defaults import default_callbacks
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.errors import DivergenceError
from cnn_lightning.models import LeNetBN
from cnn_lightning.runs import load_checkpoint
from cnn_lightning.training.checkpoint_io import AtomicCheckpointIO
from tests.conftest import run_cli


def fails(capsys: pytest.CaptureFixture, *args: str, code: int = 2) -> str:
    """Run the CLI in-process; assert it exits with ``code`` and a one-paragraph message; return the message."""
    with pytest.raises(SystemExit) as stop:
        main(list(args))
    assert stop.value.code == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("error:") == 1, err
    return err[err.index("error:") :]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model", "Nope"], "Valid models: LeNet, LeNetBN, AlexNet, VGG, NiN, GoogLeNet, ResNet, DenseNet"),
        (["--config", "nin.yaml", "--model.init_args.input_size", "32"], "NiN cannot take 32x32 images"),
        (["--config", "lenet.yaml", "--model.init_args.lr", "-0.5"], "learning rate must be positive, got -0.5"),
        (["--config", "lenet.yaml", "--data.batch_size", "0"], "batch size must be positive, got 0"),
        (["--config", "lenet.yaml", "--trainer.max_epochs", "0"], "max_epochs must be positive, got 0"),
        pytest.param(
            ["--config", "lenet_bn.yaml", "--trainer.sync_batchnorm", "true"],
            "sync_batchnorm needs GPUs",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: sync_batchnorm is allowed"),
        ),
        (["--config", "lenet.yaml", "--trainer.max_epochz", "3"], "Unknown option --trainer.max_epochz for fit"),
    ],
)
def test_bad_settings(args: list[str], expected: str, in_tmp: Path, capsys) -> None:
    assert expected in fails(capsys, "fit", *args)
    assert not (in_tmp / "lightning_logs").exists()  # refused before anything was written


def test_unknown_key_in_yaml_config(in_tmp: Path, capsys) -> None:
    config = in_tmp / "mine.yaml"
    config.write_text("model:\n  class_path: cnn_lightning.models.LeNet\n  init_args:\n    lrr: 0.1\n")
    assert "Option 'lrr' is not accepted" in fails(capsys, "fit", "--config", str(config))


def test_no_data_and_no_network(in_tmp: Path, capsys) -> None:
    message = fails(capsys, "fit", "--config", "lenet.yaml", "--data.data_dir", "empty", "--data.offline_dirs", "[]")
    assert "Fashion-MNIST was not found. Tried:" in message and "download" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_data_dir_that_is_a_file(in_tmp: Path, capsys) -> None:
    (in_tmp / "notadir").write_text("mine")
    message = fails(capsys, "fit", "--config", "lenet.yaml", "--data.data_dir", "notadir")
    assert "writable --data.data_dir" in message
    assert (in_tmp / "notadir").read_text() == "mine"


def test_corrupt_data_file_is_named_and_kept(in_tmp: Path, data_dir: Path, capsys) -> None:
    shutil.copytree(data_dir, in_tmp / "data")
    labels = in_tmp / "data" / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-10])
    message = fails(capsys, "fit", "--config", "lenet.yaml", "--data.data_dir", "data", "--trainer.fast_dev_run", "1")
    assert "train" in message and ("truncated or corrupt" in message or "shape" in message)
    assert labels.stat().st_size == 60_008 - 10


@pytest.fixture(scope="module")
def lenet_checkpoint(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lenet_run")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        main(
            [
                "fit",
                "--config",
                "lenet.yaml",
                "--data.data_dir",
                str(data_dir),
                "--trainer.max_steps",
                "3",
                "--trainer.limit_val_batches",
                "1",
                "--trainer.limit_test_batches",
                "1",
                "--trainer.accelerator",
                "cpu",
            ]
        )
    return next(root.glob("lightning_logs/*/version_*/checkpoints/last.ckpt"))


def test_checkpoint_of_another_architecture(lenet_checkpoint: Path, in_tmp: Path, capsys) -> None:
    message = fails(capsys, "fit", "--config", "densenet.yaml", "--ckpt_path", str(lenet_checkpoint))
    assert "holds a LeNet, but this run builds a DenseNet" in message


def test_corrupt_checkpoint_is_refused_and_kept(lenet_checkpoint: Path, in_tmp: Path, capsys) -> None:
    broken = in_tmp / "broken.ckpt"
    broken.write_bytes(lenet_checkpoint.read_bytes()[:5000])
    message = fails(capsys, "test", "--config", "lenet.yaml", "--ckpt_path", str(broken))
    assert "broken.ckpt is corrupt or truncated" in message
    assert broken.stat().st_size == 5000


@pytest.mark.slow  # whole CLI processes or fits, about 10 s: the full suite runs it
def test_process_exit_code_and_no_traceback() -> None:
    result = run_cli("fit", "--config", "lenet.yaml", "--model.init_args.lr", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: The learning rate must be positive")
    assert "Traceback" not in result.stderr


class RaiseLearningRate(L.Callback):
    """Drives a healthy run into divergence after ``step`` steps, as a too-large learning rate does."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = 1e38


def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    checkpoints = RunCheckpoint(dirpath=tmp_path / "ckpt", last_every_n_steps=2)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=30,
        limit_val_batches=0,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        plugins=[AtomicCheckpointIO()],
        callbacks=[*default_callbacks(), checkpoints, RaiseLearningRate(step=4)],
    )
    with pytest.raises(DivergenceError) as error:
        trainer.fit(LeNetBN(), datamodule=FashionMNISTDataModule(data_dir=str(data_dir)))
    message = str(error.value)
    assert "loss became nan" in message and "global step" in message and "--model.init_args.lr" in message
    step = int(message.split("global step ")[1].split()[0])
    assert 4 <= step <= 6  # stopped within a couple of steps of the blow-up, not at epoch end
    good = load_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert good["global_step"] == 4 and str(tmp_path / "ckpt" / "last.ckpt") in message
    assert all(torch.isfinite(value).all() for value in good["state_dict"].values())
