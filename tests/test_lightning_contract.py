"""The Lightning internals cnn_lightning relies on (cnn_lightning/lightning_contract.py): if a Lightning release
changes them, these fail by the function's name instead of every command failing at once. Every function of the
module has its test here (the last test checks that none is missing)."""

from __future__ import annotations

import inspect
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.precision import DoublePrecision, MixedPrecision, Precision

from cnn_lightning import lightning_contract
from cnn_lightning.commands import MODEL_COMMANDS, Trainer
from cnn_lightning.commands.fit import CNNLightningCLI
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.lightning_contract import (
    LightningContractError,
    checkpoint_step_interval,
    completed_train_batches,
    count_extra_batches,
    count_optimizer_step,
    format_summary_table,
    plugin_compute_dtype,
    processed_train_batches,
    rebuild_train_loader,
    stop_logging_graph,
    subcommand_parser,
)
from cnn_lightning.models import LeNet
from cnn_lightning.training import Classifier

TESTED: set[str] = set()


def pins(function):
    """Mark a test as the one of the contract function it is named after (test_<function>)."""
    TESTED.add(function.__name__.removeprefix("test_"))
    return function


class Probe(L.Callback):
    """Records what the batch counters say, and switches the batch size once training has started."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []
        self.sizes: list[int] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.datamodule.batch_size = 8
        rebuild_train_loader(trainer)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.sizes.append(len(batch[1]))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        self.seen.append((batch_idx, completed_train_batches(trainer), processed_train_batches(trainer)))


def fit(tmp_path: Path, data_dir: Path, *callbacks: L.Callback, **settings) -> L.Trainer:
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        limit_val_batches=0, default_root_dir=tmp_path, callbacks=list(callbacks),
                        **settings)  # fmt: skip
    trainer.fit(LeNet(), datamodule=FashionMNISTDataModule(data_dir=str(data_dir), batch_size=32, download=False))
    return trainer


@pins
def test_rebuild_train_loader(data_dir: Path, tmp_path: Path) -> None:
    probe = Probe()
    fit(tmp_path, data_dir, probe, max_epochs=2, limit_train_batches=3)
    assert probe.sizes == [8] * 6  # the rebuilt loader took the new batch size


@pins
def test_completed_train_batches(data_dir: Path, tmp_path: Path) -> None:
    probe = Probe()
    fit(tmp_path, data_dir, probe, max_epochs=2, limit_train_batches=3)
    assert [completed for _, completed, _ in probe.seen] == [0, 1, 2] * 2  # the batch ending not yet counted


@pins
def test_processed_train_batches(data_dir: Path, tmp_path: Path) -> None:
    probe = Probe()
    fit(tmp_path, data_dir, probe, max_epochs=2, limit_train_batches=3)
    assert [processed for _, _, processed in probe.seen] == [1, 2, 3] * 2  # the batch ending counted


class CountAsChunks(L.Callback):
    """At the ends of the second and third batch, counts 2 more optimizer steps and batches, as a chunk of 3 does."""

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step in (2, 5):
            before = (
                trainer.global_step,
                processed_train_batches(trainer),
                trainer.fit_loop.epoch_loop._batches_that_stepped,
            )
            for _ in range(2):
                count_optimizer_step(trainer)
            count_extra_batches(trainer, 2)
            after = (
                trainer.global_step,
                processed_train_batches(trainer),
                trainer.fit_loop.epoch_loop._batches_that_stepped,
            )
            assert tuple(b - a for a, b in zip(before, after, strict=True)) == (2, 2, 2)


@pins
def test_count_optimizer_step(data_dir: Path, tmp_path: Path) -> None:
    trainer = fit(tmp_path, data_dir, CountAsChunks(), max_epochs=1, limit_train_batches=8)
    # 1 + 3 + 3 + 1: the epoch's 8 batches end after 4 Lightning batches
    assert (
        trainer.global_step == 8
        and trainer.fit_loop.epoch_loop.automatic_optimization.optim_progress.optimizer_steps == 8
    )


@pins
def test_count_extra_batches(data_dir: Path, tmp_path: Path) -> None:
    trainer = fit(tmp_path, data_dir, CountAsChunks(), max_epochs=1, limit_train_batches=8)
    loop = trainer.fit_loop.epoch_loop
    assert loop.batch_progress.total.completed == 8 and loop._batches_that_stepped == 8


@pins
def test_subcommand_parser() -> None:
    """The parser of each model command, whose options the near-miss message offers."""
    captured = {}

    class Capture(CNNLightningCLI):
        def before_instantiate_classes(self) -> None:
            captured["cli"] = self
            raise SystemExit(0)

    with pytest.raises(SystemExit):
        Capture(Classifier, FashionMNISTDataModule, trainer_class=Trainer, subclass_mode_model=True,
                args=["fit", "--model", "LeNet"])  # fmt: skip
    for command in MODEL_COMMANDS:
        parser = subcommand_parser(captured["cli"], command)
        options = {option for action in parser._actions for option in action.option_strings}
        assert "--trainer.max_epochs" in options and "--data.batch_size" in options, command


@pins
def test_stop_logging_graph(tmp_path: Path) -> None:
    logger = TensorBoardLogger(tmp_path, log_graph=True)
    stop_logging_graph(logger)
    assert logger._log_graph is False
    del logger._log_graph  # as if Lightning renamed it
    with pytest.raises(LightningContractError, match="TensorBoardLogger's log_graph"):
        stop_logging_graph(logger)


@pins
def test_format_summary_table() -> None:
    table = format_summary_table(10, 10, 0.0, {"train": 1, "eval": 0}, 0, ("Name", ["net"]), ("Type", ["Sequential"]))
    assert "net" in table and "Sequential" in table and "Total params" in table


@pins
def test_checkpoint_step_interval() -> None:
    assert checkpoint_step_interval(ModelCheckpoint(every_n_train_steps=50)) == 50
    assert checkpoint_step_interval(ModelCheckpoint()) == 0


@pins
def test_plugin_compute_dtype() -> None:
    assert plugin_compute_dtype(Precision()) == torch.float32
    assert plugin_compute_dtype(MixedPrecision("bf16-mixed", "cpu")) == torch.bfloat16
    assert plugin_compute_dtype(DoublePrecision()) == torch.float64


def test_every_contract_function_has_its_test() -> None:
    functions = {
        name
        for name, value in vars(lightning_contract).items()
        if inspect.isfunction(value) and value.__module__ == lightning_contract.__name__ and not name.startswith("_")
    }
    assert functions == TESTED


def test_config_from_unnamed_checkpoints() -> None:
    """The mixin overrides LightningCLI's reading of a checkpoint's hyperparameters (tests/commands/
    test_any_classifier.py runs it): the method it overrides must still be LightningCLI's."""
    assert callable(LightningCLI._parse_ckpt_path)
    assert CNNLightningCLI.__mro__.index(
        lightning_contract.ConfigFromUnnamedCheckpoints
    ) < CNNLightningCLI.__mro__.index(LightningCLI)
