"""Training throughput: FLOPs/s and MFU count each example's FLOPs once, whatever the batch it came in."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.fabric.utilities.throughput import Throughput

from cnn_lightning.commands.fit import make_cli


def test_flops_count_every_example_once(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """100 training images in batches of 64 and 36: the FLOPs handed to Lightning's ``Throughput`` are those of 100
    examples (a batch once counted as a full configured batch, the short last one too, and a micro-batch chosen by
    ``AutoMicroBatch`` after the model's setup as the configured batch)."""
    monkeypatch.chdir(tmp_path)
    updates: list[dict] = []
    update = Throughput.update
    monkeypatch.setattr(Throughput, "update", lambda self, **kwargs: updates.append(kwargs) or update(self, **kwargs))
    cli = make_cli(
        ["--config", "lenet.yaml", "--data.data_dir", str(data_dir), "--data.val_size", "59900",
         "--data.batch_size", "64", "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "0",
         "--trainer.log_every_n_steps", "1", "--trainer.logger", "false"],
        run=False,
    )  # fmt: skip
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    per_example = cli.model.flops_per_example
    assert per_example > 0
    assert updates[-1]["samples"] == 100
    assert sum(u["flops"] for u in updates) == per_example * 100
    cli.datamodule.batch_size = 16  # what AutoMicroBatch sets after a search: the batch a step now trains
    assert cli.model.flops_per_batch == per_example * 16
