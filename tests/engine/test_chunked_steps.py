"""The engine (cnn_lightning/engine): several optimizer steps per Lightning batch give the weights of one step per
batch, bit for bit on the CPU in float32, and everything a user sets keeps counting optimizer steps."""

from __future__ import annotations

import logging
import signal
from collections import Counter
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.trainer import call
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.engine import Chunk
from cnn_lightning.lightning_contract import processed_train_batches
from cnn_lightning.runs import load_checkpoint

SHORT = ["--trainer.accelerator", "cpu", "--trainer.precision", "32-true", "--trainer.logger", "false",
         "--trainer.enable_progress_bar", "false", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches",
         "1", "--data.batch_size", "32"]  # fmt: skip


class Probe(L.Callback):
    """What the loop saw: batches of the epoch trained at each batch end, the steps checkpoints were saved at, and
    the batches' sizes. It reads the counters, not the batch, so it takes a chunk of steps as the batches it trained
    (the engine's protocol for a callback with per-batch hooks)."""

    handles_chunks = True

    def __init__(self) -> None:
        self.trained: list[int] = []
        self.saved_at: list[int] = []
        self.chunks: list[int] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        self.trained.append(processed_train_batches(trainer))
        self.chunks.append(batch.size if isinstance(batch, Chunk) else 1)

    def on_save_checkpoint(self, trainer: L.Trainer, *args) -> None:
        self.saved_at.append(trainer.global_step)


def fit(
    data_dir: Path,
    steps_per_batch: int,
    *extra: str,
    config: str = "lenet.yaml",
    ckpt_path: Path | None = None,
    callbacks: tuple[L.Callback, ...] = (),
) -> tuple[L.Trainer, Probe]:
    """A fit through the CLI's default path (the engine), ``steps_per_batch`` steps per Lightning batch at most."""
    args = ["--config", config, "--data.data_dir", str(data_dir), *SHORT, *extra]
    cli = make_cli([*args, "--trainer.strategy.steps_per_batch", str(steps_per_batch)], run=False)
    watch = Probe()
    cli.trainer.callbacks.extend([watch, *callbacks])
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    return cli.trainer, watch


def assert_same_weights(a: L.LightningModule, b: L.LightningModule) -> None:
    first, second = a.state_dict(), b.state_dict()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


CASES = {
    "two epochs, a short last chunk": "--trainer.max_epochs 2 --trainer.limit_train_batches 13",
    "max_steps inside a chunk": "--trainer.max_epochs 3 --trainer.limit_train_batches 13 --trainer.max_steps 23",
    "bf16-mixed": "--trainer.max_epochs 1 --trainer.limit_train_batches 9 --trainer.precision bf16-mixed",
    "an epoch schedule of the config": "--trainer.max_epochs 3 --trainer.limit_train_batches 6 --lr_scheduler StepLR "
    "--lr_scheduler.step_size 1 --lr_scheduler.gamma 0.5",
    "momentum, warm-up and cosine per step": "--trainer.max_epochs 2 --trainer.limit_train_batches 7 "
    "--model.init_args.momentum 0.9 --model.init_args.lr_schedule cosine --model.init_args.warmup_epochs 0.5",
}


@pytest.mark.parametrize("extra", CASES.values(), ids=CASES.keys())
def test_chunks_train_the_weights_of_one_step_per_batch(data_dir: Path, tmp_path: Path, monkeypatch, extra) -> None:
    monkeypatch.chdir(tmp_path)
    one, probe_one = fit(data_dir, 1, *extra.split())
    chunked, probe = fit(data_dir, 4, *extra.split())
    assert chunked.strategy.chunk_steps == 4 and one.strategy.chunk_steps == 1
    assert chunked.global_step == one.global_step
    assert_same_weights(chunked.lightning_module, one.lightning_module)
    assert len(probe.trained) <= len(probe_one.trained) / 2  # Lightning's per-batch loop ran once per chunk
    assert max(probe.chunks) == 4 and set(probe_one.chunks) == {1}
    assert chunked.optimizers[0].param_groups[0]["lr"] == one.optimizers[0].param_groups[0]["lr"]


def test_chunks_end_on_multiples_of_their_length_and_count_the_batches_they_trained(
    data_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """13 batches an epoch, chunks of 4: the second epoch's chunks end on global steps 16, 20, 24 and its end, so a
    checkpoint due every 4 steps falls on a chunk's end; the bar counts batches trained, not chunks."""
    monkeypatch.chdir(tmp_path)
    extra = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "13", "--trainer.limit_val_batches", "0"]
    _, probe = fit(data_dir, 4, *extra, "--checkpoint.last_every_n_steps=4")
    assert probe.trained == [4, 8, 12, 13, 3, 7, 11, 13]
    _, one = fit(data_dir, 1, *extra, "--checkpoint.last_every_n_steps=4")
    assert probe.saved_at == one.saved_at and {4, 8, 12, 16, 20, 24} <= set(probe.saved_at)


def test_the_chunk_length_divides_every_checkpoint_interval(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    trainer, _ = fit(data_dir, 8, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "12",
                     "--checkpoint.last_every_n_steps=6")  # fmt: skip
    assert trainer.strategy.chunk_steps == 6  # the largest of 1..8 dividing 6


class EveryStep(L.Callback):
    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None: ...


LBFGS = ["--optimizer", "LBFGS", "--optimizer.max_iter", "2", "--model.init_args.channels_last", "false"]  # NCHW views


@pytest.mark.parametrize(
    ("extra", "callbacks", "why"),
    [
        (["--trainer.accumulate_grad_batches", "2"], (), "gradient accumulation"),
        (["--trainer.gradient_clip_val", "1.0"], (), "gradient clipping"),
        (["--trainer.val_check_interval", "5"], (), "val_check_interval"),
        (LBFGS, (), "LBFGS"),
        (["--trainer.profiler", "simple"], (), "the profiler SimpleProfiler times every step"),
        ([], (EveryStep(),), "EveryStep.on_after_backward is called once per batch or step"),
    ],
)
def test_what_cannot_hold_runs_lightnings_loop_and_says_why(
    data_dir: Path, tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture, extra, callbacks, why: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO):
        trainer, probe = fit(data_dir, 4, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "10", *extra,
                             callbacks=callbacks)  # fmt: skip
    lines = [record.getMessage() for record in caplog.records if "Chunked steps off" in record.getMessage()]
    assert len(lines) == 1 and why in lines[0], lines
    assert trainer.strategy.chunk_steps == 1 and probe.trained == list(range(1, 11))


def terminate_while_preparing(step: int, trainer: L.Trainer, datamodule: L.LightningDataModule) -> None:
    """SIGTERM to this process while the batch of optimizer step ``step`` is prepared, as a cluster's scheduler would
    send it: through the data module's own transfer hook, which the engine calls for every batch of a chunk."""
    prepare = datamodule.on_after_batch_transfer

    def prepare_and_terminate(batch, dataloader_idx: int):
        if trainer.training and trainer.global_step == step - 1:
            signal.raise_signal(signal.SIGTERM)
        return prepare(batch, dataloader_idx)

    datamodule.on_after_batch_transfer = prepare_and_terminate


@pytest.mark.parametrize(("before", "after"), [(4, 4), (1, 4), (4, 1)], ids=["chunked", "from-one", "to-one"])
def test_a_stop_inside_a_chunk_resumes_exactly_whichever_path_saved_it(
    data_dir: Path, tmp_path: Path, monkeypatch, before: int, after: int
) -> None:
    """SIGTERM during step 6 (inside the chunk of steps 5-8): the chunk stops after it, last.ckpt holds step 6, and
    resumed with or without chunks the run ends with the weights of an uninterrupted one."""
    monkeypatch.chdir(tmp_path)
    extra = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "13"]
    straight, _ = fit(data_dir, 4, *extra)
    cli = make_cli(["--config", "lenet.yaml", "--data.data_dir", str(data_dir), *SHORT, *extra,
                    "--trainer.strategy.steps_per_batch", str(before)], run=False)  # fmt: skip
    terminate_while_preparing(6, cli.trainer, cli.datamodule)
    with pytest.raises(SIGTERMException):
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.strategy.chunk_steps == before
    last = Path("lightning_logs/lenet/version_1/checkpoints/last.ckpt")
    assert load_checkpoint(last)["global_step"] == 6
    resumed, probe = fit(data_dir, after, *extra, ckpt_path=last)
    assert probe.trained[0] == 6 % 13 + (2 if after == 4 else 1)  # first chunk: steps 7-8 (to a multiple of 4)
    assert resumed.global_step == straight.global_step == 26
    assert_same_weights(resumed.lightning_module, straight.lightning_module)


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [
        "lenet_bn.yaml",
        "recipes/lenet_bn.yaml",
        "alexnet.yaml",
        "vgg.yaml",
        "nin.yaml",
        "googlenet.yaml",
        "resnet.yaml",
        "densenet.yaml",
    ],
)
def test_every_book_network_and_a_recipe_train_the_same_weights(
    data_dir: Path, tmp_path: Path, monkeypatch, config: str
) -> None:
    """Batch norm's running statistics, dropout's draws from the global generator, the recipe's augmentation (each
    batch its own draws), EMA after every step, warm-up and cosine decay per step: the same as one step per batch."""
    monkeypatch.chdir(tmp_path)
    small = "recipes" not in config and config not in ("lenet_bn.yaml",)
    extra = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3" if small else "7"]
    extra += ["--data.batch_size", "4"] if small else []
    one, _ = fit(data_dir, 1, *extra, config=config)
    chunked, _ = fit(data_dir, 2, *extra, config=config)
    assert chunked.strategy.chunk_steps == 2 and chunked.global_step == one.global_step
    assert_same_weights(chunked.lightning_module, one.lightning_module)


def test_lightnings_per_batch_and_per_step_calls_run_once_per_chunk(
    data_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """What the engine saves: 8 steps in chunks of 4 go through Lightning's per-batch loop and its optimizer step's
    calls into every callback twice, not 8 times (if they came back for every step, this fails)."""
    monkeypatch.chdir(tmp_path)
    calls: Counter[str] = Counter()
    original = call._call_callback_hooks

    def counted(trainer, hook_name, *args, **kwargs):
        calls[hook_name] += 1
        return original(trainer, hook_name, *args, **kwargs)

    monkeypatch.setattr(call, "_call_callback_hooks", counted)
    trainer, _ = fit(data_dir, 4, "--trainer.max_steps", "8")
    assert trainer.global_step == 8
    hooks = ("on_train_batch_start", "on_before_backward", "on_before_optimizer_step", "on_train_batch_end")
    assert {hook: calls[hook] for hook in hooks} == dict.fromkeys(hooks, 2)
