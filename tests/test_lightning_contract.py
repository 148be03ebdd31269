"""The Lightning internals cnn_lightning relies on (cnn_lightning/lightning_contract.py): if a Lightning release
changes them, these fail by name instead of every command failing at once."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest

from cnn_lightning.commands import MODEL_COMMANDS, Trainer
from cnn_lightning.commands.fit import CNNLightningCLI
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.lightning_contract import (
    HOOK_NAME_ATTRIBUTE,
    completed_train_batches,
    count_direct_steps,
    format_summary_table,
    processed_train_batches,
    rebuild_train_loader,
    subcommand_parser,
)
from cnn_lightning.models import LeNet
from cnn_lightning.training import Classifier


class Probe(L.Callback):
    """Records what the contract functions see, and switches the batch size once training has started."""

    def __init__(self) -> None:
        self.completed: list[tuple[int, int]] = []
        self.sizes: list[int] = []
        self.hook_names: set[str] = set()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.datamodule.batch_size = 8
        rebuild_train_loader(trainer)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.completed.append((batch_idx, completed_train_batches(trainer)))
        self.sizes.append(len(batch[1]))
        self.hook_names.add(getattr(pl_module, HOOK_NAME_ATTRIBUTE))
        assert HOOK_NAME_ATTRIBUTE in vars(pl_module)  # a plain attribute, as Classifier.__setattr__ stores it


def test_lightning_internals_we_use_behave_as_expected(data_dir: Path, tmp_path: Path) -> None:
    probe = Probe()
    trainer = L.Trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=0, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path,
                        callbacks=[probe])  # fmt: skip
    data = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=32, download=False)
    trainer.fit(LeNet(steps_per_batch=1), datamodule=data)
    assert probe.sizes == [8] * 6  # the rebuilt loader took the new batch size
    assert probe.completed == [(0, 0), (1, 1), (2, 2)] * 2  # completed batches of the current epoch
    assert probe.hook_names == {"on_train_batch_start"}  # the hook Lightning is calling, under the name we speed up


class ChunkProbe(L.Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int, int]] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        loop = trainer.fit_loop.epoch_loop
        self.seen.append((batch_idx, processed_train_batches(trainer), trainer.global_step, loop._batches_that_stepped))


def test_a_chunk_counts_as_the_batches_and_steps_it_ran(data_dir: Path, tmp_path: Path) -> None:
    """count_chunk_as_steps and adopt_optimizer_steps: batch progress, the logging step and both optimizations' step
    counts advance by the chunk's steps; a later fit without chunks starts from the same global_step."""
    probe = ChunkProbe()
    trainer = L.Trainer(max_epochs=1, limit_train_batches=10, limit_val_batches=0, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path,
                        callbacks=[probe])  # fmt: skip
    data = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=16, download=False)
    model = LeNet(steps_per_batch=4)
    trainer.fit(model, datamodule=data)
    # (first batch of the chunk, batches processed, global_step, logging step before Lightning adds the chunk's 1)
    assert probe.seen == [(0, 4, 4, 3), (4, 8, 8, 7), (8, 10, 10, 9)]
    loop = trainer.fit_loop.epoch_loop
    assert loop.automatic_optimization.optim_progress.optimizer_steps == 10 and loop._batches_that_stepped == 10
    assert model.automatic_optimization  # switched back at the fit's end: a later fit decides afresh


class CountThree(L.Callback):
    """Counts 3 steps a replayed graph would have taken, at the first chunk's end."""

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == 4:
            self.before = trainer.global_step
            count_direct_steps(trainer, 3)
            self.after = trainer.global_step


def test_steps_taken_outside_the_lightning_optimizer_count_in_global_step(data_dir: Path, tmp_path: Path) -> None:
    counter = CountThree()
    trainer = L.Trainer(max_steps=8, limit_val_batches=0, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, default_root_dir=tmp_path, callbacks=[counter])  # fmt: skip
    trainer.fit(LeNet(steps_per_batch=4), datamodule=FashionMNISTDataModule(data_dir=str(data_dir), download=False))
    assert (counter.before, counter.after) == (4, 7)


def test_each_subcommand_parser_is_reachable() -> None:
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


def test_the_summary_table_formats_rows() -> None:
    table = format_summary_table(10, 10, 0.0, {"train": 1, "eval": 0}, 0, ("Name", ["net"]), ("Type", ["Sequential"]))
    assert "net" in table and "Sequential" in table and "Total params" in table
