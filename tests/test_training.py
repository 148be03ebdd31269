"""A real LeNet training on the real data through the CLI: it learns, and TensorBoard gets every scalar."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnn_lightning.cli import make_cli

EXPECTED_SCALARS = {
    "train/loss",
    "train/acc",
    "val/loss",
    "val/acc",
    "test/acc",
    "lr-SGD",
    "train/device/samples_per_sec",
}


@pytest.mark.slow
def test_lenet_learns_and_logs(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    cli = make_cli(
        [
            "fit",
            "--config",
            "lenet.yaml",
            "--trainer.max_epochs",
            "3",
            "--data.data_dir",
            str(data_dir),
            "--trainer.accelerator",
            "cpu",
        ]
    )
    closing = capsys.readouterr().out.strip().splitlines()[-1]
    test_acc = float(closing.split("test acc ")[1].split(",")[0])
    assert test_acc > 0.6, closing  # chance is 0.1; the book's LeNet reaches ~0.8 after 10 epochs
    assert cli.trainer.callback_metrics["train/loss"] < 1.0

    runs = list((tmp_path / "lightning_logs").glob("version_*"))
    assert len(runs) == 1 and (runs[0] / "config.yaml").is_file()
    events = EventAccumulator(str(runs[0]), size_guidance={"scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert scalars >= EXPECTED_SCALARS, EXPECTED_SCALARS - scalars
    assert {
        "final/test_acc",
        "final/val_acc",
        "final/train_loss",
        "final/examples_per_sec",
    } <= scalars  # hyper-parameters' final metrics
    assert len(events.Scalars("val/acc")) == 3
    assert events.Scalars("final/test_acc")[-1].value == pytest.approx(test_acc, abs=5e-4)
