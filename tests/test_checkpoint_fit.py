"""A checkpoint that does not fit what would load it — weights of other shapes, a Lightning version this project
cannot resume (0.7.1) or none at all (garbage) — is refused in one line before Lightning touches it, and the refused
command leaves no run folder behind (``report`` would list an empty one)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from cnn_lightning.__main__ import main
from cnn_lightning.commands.checkpoint_fit import check_checkpoint_fits
from cnn_lightning.errors import ConfigError
from cnn_lightning.runs import check_lightning_version
from tests.test_errors import fails

CHECKPOINT = Path(__file__).parent / "fixtures" / "lenet_run_0.2.0" / "checkpoints" / "last.ckpt"  # a LeNet's


def edited(folder: Path, name: str, change) -> Path:
    checkpoint = torch.load(CHECKPOINT, weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, folder / name)
    return folder / name


def other_shape(checkpoint: dict) -> None:
    checkpoint["state_dict"]["net.features.0.weight"] = torch.zeros(6, 1, 3, 3)


def lightning_version(version: str):
    return lambda checkpoint: checkpoint.__setitem__("pytorch-lightning_version", version)


def test_weights_of_another_shape_are_named() -> None:
    checkpoint = torch.load(CHECKPOINT, weights_only=True)
    check_checkpoint_fits(CHECKPOINT, checkpoint, None)  # the checkpoint's own class and settings: it fits
    other_shape(checkpoint)
    with pytest.raises(ConfigError) as refused:
        check_checkpoint_fits("bad.ckpt", checkpoint, None)
    assert str(refused.value).startswith(
        "Checkpoint bad.ckpt does not fit LeNet as configured: net.features.0.weight is [6, 1, 3, 3] in the "
        "checkpoint, [6, 1, 5, 5] in the model."
    )
    del checkpoint["state_dict"]["net.features.0.bias"]  # a tensor short: refused by the renaming of old keys
    with pytest.raises(ConfigError, match="network does not match LeNet as configured: it has 9 weight tensors"):
        check_checkpoint_fits("bad.ckpt", checkpoint, None)


@pytest.mark.parametrize(
    ("version", "said"),
    [
        ("0.7.1", "was written by Lightning 0.7.1; this project reads checkpoints of Lightning 2.0 to 3.0"),
        ("3.1.0", "was written by Lightning 3.1.0"),
        ("garbage", "records 'garbage' as its Lightning version: it was not written by Lightning's Trainer"),
    ],
)
def test_a_lightning_version_outside_the_range(version: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        check_lightning_version({"pytorch-lightning_version": version}, "old.ckpt")
    check_lightning_version({"pytorch-lightning_version": "2.6.6"}, "good.ckpt")
    check_lightning_version({}, "weights.ckpt")  # read for its weights only: no version needed
    with pytest.raises(ConfigError, match="records no Lightning version"):
        check_lightning_version({}, "weights.ckpt", required=True)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (other_shape, "does not fit LeNet as configured: net.features.0.weight is [6, 1, 3, 3]"),
        (lightning_version("0.7.1"), "was written by Lightning 0.7.1"),
        (lightning_version("garbage"), "records 'garbage' as its Lightning version"),
    ],
)
def test_commands_refuse_it_and_leave_no_run_folder(change, said: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    bad = edited(tmp_path, "bad.ckpt", change)
    for command in (["fit", "--config", "lenet.yaml"], ["validate", "--config", "lenet.yaml"], ["test"]):
        assert said in fails(capsys, *command, "--ckpt_path", "bad.ckpt"), command
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.ckpt"]  # no lightning_logs/version_N
    assert torch.load(bad, weights_only=True)["pytorch-lightning_version"]  # the file is left as it was


@pytest.mark.slow  # a resumed fit in-process, 6 s
def test_a_run_whose_config_was_deleted_resumes_from_its_checkpoint(
    tmp_path: Path, data_dir: Path, monkeypatch, capsys
) -> None:
    """Model and data settings from the checkpoint, the trainer's from the command line; one line says so."""
    run = tmp_path / "lightning_logs" / "version_0"
    shutil.copytree(CHECKPOINT.parent.parent, run)
    (run / "config.yaml").unlink()
    monkeypatch.chdir(tmp_path)
    main(["fit", "--ckpt_path", "lightning_logs/version_0", "--data.data_dir", str(data_dir),
          "--trainer.max_epochs", "3", "--trainer.max_steps", "16", "--trainer.limit_val_batches", "1",
          "--trainer.limit_test_batches", "1",
          "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"])  # fmt: skip
    said = capsys.readouterr()
    assert "lightning_logs/version_0 has no config.yaml (deleted?): its model and data settings come from" in said.err
    assert "test acc" in said.out.strip().splitlines()[-2]  # the closing line's first of two
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 16
    assert (run / "config.yaml").is_file() and [p.name for p in run.parent.iterdir()] == ["version_0"]
