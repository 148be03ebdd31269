"""A real LeNet training on the real data through the CLI: it learns, and TensorBoard gets every scalar."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnn_lightning.cli import make_cli
from cnn_lightning.data import resize_batch

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


def test_optimizer_and_scheduler_come_from_the_config(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """The book's SGD is the default; a config's optimizer/lr_scheduler (LightningCLI) replaces it, and the
    criterion's label smoothing is a model setting."""
    monkeypatch.chdir(tmp_path)
    base = ["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.accelerator", "cpu"]
    optimizer = make_cli(base, run=False).model.configure_optimizers()
    assert type(optimizer) is torch.optim.SGD and optimizer.defaults["lr"] == 0.9
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "optimizer:\n  class_path: torch.optim.AdamW\n  init_args: {lr: 0.002, weight_decay: 0.05}\n"
        "lr_scheduler:\n  class_path: torch.optim.lr_scheduler.CosineAnnealingLR\n  init_args: {T_max: 2}\n"
        "model:\n  init_args: {label_smoothing: 0.1}\n"
    )
    cli = make_cli(["fit", *base, "--config", str(recipe), "--trainer.max_epochs", "2",
                    "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
                    "--trainer.limit_test_batches", "1"])  # fmt: skip
    optimizer = cli.trainer.optimizers[0]
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["weight_decay"] == 0.05
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0)  # cosine to 0 over T_max = 2 epochs
    assert cli.model.criterion.label_smoothing == 0.1


def test_epoch_metrics_weigh_every_example_once(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logged loss and accuracy of an epoch are the book's: over every example it saw, the last, smaller batch
    (55,000 = 214 × 256 + 216) weighing its size. A learning rate of 1e-12 keeps the weights those of the first
    step, so one pass of the final model over each split must give the same figures."""
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["fit", "--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--trainer.max_epochs", "1",
                    "--model.init_args.lr", "1e-12", "--trainer.logger", "false",
                    "--trainer.enable_progress_bar", "false"])  # fmt: skip
    model, metrics = cli.model.eval(), cli.trainer.callback_metrics
    for stage in ("train", "val"):
        images, labels = cli.datamodule.split(stage)
        with torch.no_grad():
            logits = torch.cat([model(resize_batch(part, 28)) for part in images.split(2048)])
        accuracy = (logits.argmax(dim=1) == labels).double().mean().item()
        assert float(metrics[f"{stage}/acc"]) == pytest.approx(accuracy, abs=1e-6), stage
        loss = torch.nn.functional.cross_entropy(logits.double(), labels).item()
        assert float(metrics[f"{stage}/loss"]) == pytest.approx(loss, rel=1e-5), stage
