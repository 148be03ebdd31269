"""Checkpoints and resume: exact continuation at an epoch boundary and mid-epoch, in place, atomically."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.runs import load_checkpoint
from tests.engine.test_chunked_steps import terminate_while_preparing

SHORT = ["--trainer.limit_train_batches", "12", "--trainer.limit_val_batches", "3", "--trainer.accelerator", "cpu"]


def fit(data_dir: Path, *extra: str) -> None:
    make_cli(["fit", "--config", "lenet_bn.yaml", "--data.data_dir", str(data_dir), *SHORT, *extra])


def last_checkpoint(root: Path) -> dict:
    paths = list(root.glob("lightning_logs/*/version_*/checkpoints/last*.ckpt"))
    assert len(paths) == 1, paths
    return load_checkpoint(paths[0])


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


@pytest.fixture(scope="module")
def straight(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two epochs of LeNetBN (batch norm: running statistics must resume too) in one go."""
    root = tmp_path_factory.mktemp("straight")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        fit(data_dir, "--trainer.max_epochs", "2")
    return last_checkpoint(root)


@pytest.mark.slow  # two fits and a resume, about 20 s: the full suite runs it
def test_resume_at_epoch_boundary_is_exact(straight: dict, data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    fit(data_dir, "--trainer.max_epochs", "1")
    fit(data_dir, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    resumed = last_checkpoint(tmp_path)  # one run folder: the resume continued in place
    assert resumed["global_step"] == straight["global_step"] == 24
    assert_same_weights(resumed["state_dict"], straight["state_dict"])
    best_straight = straight["callbacks"]
    best_resumed = resumed["callbacks"]
    assert [v.get("best_model_score") for v in best_resumed.values()] == [
        v.get("best_model_score") for v in best_straight.values()
    ]
    run = next((tmp_path / "lightning_logs").glob("*/version_*"))
    assert (run / "config.yaml").is_file() and (run / "config.resume-1.yaml").is_file()


def test_resume_mid_epoch_continues_the_data_order(straight: dict, data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["--config", "lenet_bn.yaml", "--data.data_dir", str(data_dir), *SHORT], run=False)
    terminate_while_preparing(7, cli.trainer, cli.datamodule)  # in the middle of a chunk of steps, which stops after it
    with pytest.raises(SIGTERMException):
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    stopped = last_checkpoint(tmp_path)
    assert stopped["global_step"] == 7
    run = next((tmp_path / "lightning_logs").glob("*/version_*"))
    fit(data_dir, "--trainer.max_epochs", "2", "--ckpt_path", str(run))  # a run folder resumes its last.ckpt
    assert_same_weights(last_checkpoint(tmp_path)["state_dict"], straight["state_dict"])


def test_no_temporary_files_and_weights_only_loading(straight: dict) -> None:
    assert "state_dict" in straight and "loops" in straight  # load_checkpoint uses torch.load(weights_only=True)
    assert "torch_rng_state" in straight  # dropout masks resume with the same random stream


def test_last_without_any_run_is_refused(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    from cnn_lightning.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--ckpt_path", "last"])
    assert stop.value.code == 2
    assert "no last.ckpt" in capsys.readouterr().err
