"""Checkpoint files on a disk that fills up: one line saying what is intact and how to resume, nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest

from cnn_lightning.__main__ import main
from cnn_lightning.runs import load_checkpoint
from tests.conftest import SmallDisk


class FillDiskAt(L.Callback):
    """Takes all the free space of the disk holding the run once training reaches ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_before_optimizer_step(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step - 1:  # during step ``step``: inside a chunk of steps too
            SmallDisk(Path.cwd()).fill()


def test_a_full_disk_during_fit_is_one_line_and_keeps_the_last_checkpoint(
    small_disk: SmallDisk, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(small_disk.root)
    filler = {"class_path": f"{__name__}.FillDiskAt", "init_args": {"step": 3}}
    with pytest.raises(SystemExit) as stopped:
        main(["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_steps", "8",
              "--checkpoint.last_every_n_steps", "2", "--trainer.limit_val_batches", "0",
              "--trainer.enable_progress_bar", "false", f"--trainer.callbacks+={json.dumps(filler)}"])  # fmt: skip
    assert stopped.value.code == 4
    error = capsys.readouterr().err.strip().splitlines()[-1]
    run = Path("lightning_logs/lenet/version_0")
    assert error.startswith("error: No space left on device: checkpoint last.ckpt could not be written to"), error
    assert (
        f"intact (last.ckpt). Free some space, then resume with: python -m cnn_lightning fit --ckpt_path {run}" in error
    )
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 2
    assert small_disk.leftovers() == []
