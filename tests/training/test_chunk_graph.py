"""The chunk's CUDA graph (training/chunk_graph.py) around its capture, on the CPU: with a recorder that replays the
recorded steps eagerly, everything a replay relies on (static inputs, the learning-rate table filled from the
schedule, fused SGD, the outcomes handed to the metrics and the guard, the steps counted, capturing again when the
optimizer's state is new) trains what one step per batch trains. The capture itself is tests/test_cuda.py's."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import lightning as L
import pytest
import torch

from cnn_lightning.errors import DivergenceError
from cnn_lightning.training.chunk_graph import ChunkGraph
from tests.test_errors import RaiseLearningRate
from tests.training.test_chunked_steps import fit

MOMENTUM_AND_SCHEDULE = ["--model.init_args.momentum", "0.9", "--model.init_args.lr_schedule", "cosine",
                         "--model.init_args.warmup_epochs", "0.5"]  # fmt: skip
TWO_EPOCHS = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "13"]


class EagerGraph(L.Callback):
    """Gives the fit a ChunkGraph whose recorder replays the recorded steps eagerly, counting its captures."""

    def __init__(self) -> None:
        self.captures = 0
        self.graph: ChunkGraph | None = None

    def record(self, steps):
        self.captures += 1
        return steps

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.graph = pl_module.chunk_graph = ChunkGraph(pl_module, pl_module.steps_per_batch, record=self.record)


class RenewOptimizerState(L.Callback):
    """At ``step``, the optimizer's state becomes new tensors of the same values, as loading a checkpoint makes it."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            optimizer = trainer.optimizers[0]
            optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))


def fit_replayed(data_dir: Path, *extra: str, callbacks: tuple[L.Callback, ...] = ()) -> tuple[L.Trainer, EagerGraph]:
    graph = EagerGraph()
    trainer, _ = fit(data_dir, 4, *extra, callbacks=(graph, *callbacks))
    return trainer, graph


def test_replayed_chunks_train_the_weights_of_one_step_per_batch(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Two epochs of 13 batches in chunks of 4: the first full chunk warms up eagerly, the epochs' short last chunks
    run eagerly, the rest replay; momentum, warm-up and cosine decay per step (every step a new rate)."""
    monkeypatch.chdir(tmp_path)
    one, _ = fit(data_dir, 1, *TWO_EPOCHS, *MOMENTUM_AND_SCHEDULE)
    replayed, graph = fit_replayed(data_dir, *TWO_EPOCHS, *MOMENTUM_AND_SCHEDULE)
    assert graph.captures == 1 and graph.graph.replays == 4  # chunks 2-3 and 5-6: 16 of 26 steps replayed
    assert replayed.global_step == one.global_step == 26
    first, second = replayed.lightning_module.state_dict(), one.lightning_module.state_dict()
    for name in first:  # fused SGD against foreach: the same arithmetic, to rounding
        torch.testing.assert_close(first[name], second[name], rtol=1e-5, atol=1e-6, msg=name)
    assert replayed.optimizers[0].param_groups[0]["lr"] == one.optimizers[0].param_groups[0]["lr"]
    for metric in ("train/loss", "train/acc"):  # the epoch metrics got every replayed step's outcome
        torch.testing.assert_close(replayed.callback_metrics[metric], one.callback_metrics[metric], rtol=1e-4, atol=0)


def test_new_optimizer_state_is_captured_again(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    one, _ = fit(data_dir, 1, *TWO_EPOCHS, *MOMENTUM_AND_SCHEDULE)
    replayed, graph = fit_replayed(data_dir, *TWO_EPOCHS, *MOMENTUM_AND_SCHEDULE, callbacks=(RenewOptimizerState(12),))
    assert graph.captures == 2
    for name, value in replayed.lightning_module.state_dict().items():
        torch.testing.assert_close(value, one.lightning_module.state_dict()[name], rtol=1e-5, atol=1e-6, msg=name)


def test_a_divergence_inside_a_replayed_chunk_names_its_step(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """The guard gets the chunk's losses as one tensor and names the first non-finite step, as one step per batch
    names it."""
    monkeypatch.chdir(tmp_path)
    messages = []
    for run in (lambda: fit(data_dir, 1, *TWO_EPOCHS, callbacks=(RaiseLearningRate(step=8),)),
                lambda: fit_replayed(data_dir, *TWO_EPOCHS, callbacks=(RaiseLearningRate(step=8),))):  # fmt: skip
        with pytest.raises(DivergenceError) as error:
            run()
        messages.append(str(error.value))
    assert "global step 9" in messages[0] or "global step 10" in messages[0], messages[0]
    assert messages[1] == messages[0]


@pytest.mark.parametrize(
    ("extra", "per_step", "why"),
    [
        (["--optimizer", "AdamW"], False, "the optimizer AdamW"),
        (["--data.random_crop_padding", "2"], False, "random augmentation"),
        ([], True, "StepProbe runs on_before_optimizer_step at every optimizer step"),
        ([], False, "training on cpu"),
    ],
)
def test_what_a_graph_cannot_replay_runs_its_chunks_eagerly_and_says_why(
    data_dir: Path, tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture, extra: list[str], per_step, why: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO):
        trainer, _ = fit(data_dir, 4, "--trainer.max_steps", "8", "--model.init_args.cuda_graph", "true", *extra,
                         per_step=per_step)  # fmt: skip
    lines = [record.getMessage() for record in caplog.records if "CUDA graph off" in record.getMessage()]
    assert len(lines) == 1 and why in lines[0], lines
    assert trainer.global_step == 8 and trainer.lightning_module.steps_per_batch == 4
    assert trainer.lightning_module.chunk_graph is None
