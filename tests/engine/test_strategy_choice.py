"""Which strategy a run gets: the engine on the command line's one-device runs, Lightning's strategy wherever the
user names one or asks for several devices, and Lightning's loop from a plain ``lightning.Trainer``."""

from __future__ import annotations

import logging

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.engine import ChunkedSteps
from cnn_lightning.engine.exactness import one_device
from cnn_lightning.errors import ConfigError
from cnn_lightning.models import LeNet

BASE = ["--config", "lenet.yaml", "--trainer.logger", "false"]


def test_the_command_line_trains_with_the_engine_on_one_device() -> None:
    strategy = make_cli(BASE, run=False).trainer.strategy
    assert type(strategy) is ChunkedSteps and strategy.steps_per_batch == 25 and strategy.root_device.type == "cpu"
    chosen = make_cli([*BASE, "--trainer.strategy.steps_per_batch", "5"], run=False).trainer.strategy
    assert type(chosen) is ChunkedSteps and chosen.steps_per_batch == 5


def test_a_strategy_the_user_names_replaces_it() -> None:
    assert type(make_cli([*BASE, "--trainer.strategy", "auto"], run=False).trainer.strategy) is SingleDeviceStrategy
    named = make_cli([*BASE, "--trainer.strategy", "chunked_steps"], run=False).trainer.strategy
    assert type(named) is ChunkedSteps  # Lightning's registry knows it by name


def test_several_devices_get_lightnings_strategy(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        trainer = make_cli([*BASE, "--trainer.accelerator", "cpu", "--trainer.devices", "2"], run=False).trainer
    assert isinstance(trainer.strategy, DDPStrategy) and trainer.world_size == 2
    assert any("Chunked steps off: they train on one device" in record.getMessage() for record in caplog.records)


def test_one_device_reads_lightnings_device_flags() -> None:
    assert one_device("auto", "auto", 1) and one_device("cpu", 1, 1) and one_device("cpu", "1", 1)
    assert not one_device("cpu", 2, 1) and not one_device("cpu", "2", 1) and not one_device("auto", "auto", 2)
    assert not one_device("tpu", 1, 1)  # an accelerator of another kind: Lightning's own strategies


def test_a_plain_trainer_runs_lightnings_loop_and_the_engine_is_one_argument_away() -> None:
    assert type(L.Trainer(accelerator="cpu", logger=False).strategy) is SingleDeviceStrategy
    engine = L.Trainer(accelerator="cpu", logger=False, strategy=ChunkedSteps(steps_per_batch=4)).strategy
    assert type(engine) is ChunkedSteps and engine.root_device.type == "cpu"


def test_a_chunk_of_no_steps_is_refused_naming_the_option() -> None:
    with pytest.raises(ConfigError, match=r"--trainer\.strategy\.steps_per_batch"):
        make_cli([*BASE, "--trainer.strategy.steps_per_batch", "0"], run=False)


def test_from_python_the_engine_trains_the_weights_of_lightnings_loop(data_dir) -> None:
    """The README's two lines: a plain Trainer and the same with strategy=ChunkedSteps(), the same weights."""
    weights = []
    for strategy in ("auto", ChunkedSteps(steps_per_batch=4)):
        L.seed_everything(0)
        trainer = L.Trainer(accelerator="cpu", precision="32-true", max_epochs=2, limit_train_batches=6,
                            limit_val_batches=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, strategy=strategy)  # fmt: skip
        model = LeNet(momentum=0.9, lr_schedule="cosine")
        trainer.fit(model, datamodule=FashionMNISTDataModule(data_dir=str(data_dir), batch_size=32))
        weights.append(model.state_dict())
    assert trainer.strategy.chunk_steps == 4
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
