"""The CUDA paths, on a GPU only (CI has none; run on a lent GPU machine): every config trains there, the on-device
resize equals the CPU's, the steady-state training step never waits on the host, and the divergence guard, which
reads its flags without blocking there, still stops the run before a bad checkpoint is written; chunked steps and
their CUDA graph (replayed, resumed) too."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from cnn_lightning.callbacks.run_checkpoint import RunCheckpoint
from cnn_lightning.commands.cli_defaults import default_callbacks
from cnn_lightning.commands.fit import make_cli
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.resident_batches import resize_batch
from cnn_lightning.engine import ChunkedSteps, ChunkGraph
from cnn_lightning.errors import DivergenceError
from cnn_lightning.models import LeNet, LeNetBN, ResNet
from cnn_lightning.runs import load_checkpoint
from cnn_lightning.training.checkpoint_io import AtomicCheckpointIO
from tests.commands.test_fit import BOOK_CONFIGS
from tests.test_errors import RaiseLearningRate

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("config", BOOK_CONFIGS)
def test_every_config_trains_on_cuda(
    config: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    make_cli(["fit", "--config", f"{config}.yaml", "--trainer.max_steps", "3", "--trainer.limit_val_batches", "2",
              "--trainer.limit_test_batches", "2", "--data.data_dir", str(data_dir)])  # fmt: skip
    accuracy, closing = capsys.readouterr().out.strip().splitlines()[-2:]
    assert accuracy.startswith("loss ") and "examples/sec on cuda" in closing
    # CUDA's allocated peak: at least the training split resident on the device (55,000 uint8 images).
    peak = float(closing.rsplit("peak memory ", 1)[1].split()[0]) * (1024 if closing.endswith("GiB") else 1)
    assert peak >= 55_000 * 784 / 2**20


@pytest.mark.parametrize("size", [28, 96, 224])
def test_resize_on_cuda_equals_the_cpu(data_dir: Path, size: int) -> None:
    data = FashionMNISTDataModule(data_dir=str(data_dir), download=False)
    data.setup("fit")
    images = data.split("train")[0][:256]
    on_cpu, on_cuda = resize_batch(images, size), resize_batch(images.cuda(), size).cpu()
    assert (on_cpu - on_cuda).abs().max() <= 1 / 255 + 1e-7  # within one grey level of the book's PIL pipeline


class SyncWatch(L.Callback):
    """Makes every host synchronization an error from optimizer step ``first`` to ``last`` (hooks included, counted
    in steps, which a chunk of steps holds several of), so the test's traceback names the line that synchronized."""

    handles_chunks = True  # it reads the step counters: the engine keeps its chunks

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if self.first <= trainer.global_step < self.last:
            torch.cuda.set_sync_debug_mode("error")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if trainer.global_step >= self.last:
            torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize(("steps_per_batch", "cuda_graph"), [(1, False), (8, False), (8, True)],
                         ids=["one-step", "chunked", "graphed"])  # fmt: skip
@pytest.mark.parametrize("model_class", [LeNet, ResNet])
def test_steady_state_training_step_never_syncs(
    model_class: type, steps_per_batch: int, cuda_graph: bool, data_dir: Path, tmp_path: Path
) -> None:
    """Between logged steps and checkpoints, nothing in a step, a chunk of steps or a chunk's replay (loss guard,
    metrics, callbacks, logging, data, the learning rates' upload) makes the host wait for the GPU."""
    engine = ChunkedSteps(steps_per_batch=steps_per_batch, cuda_graph=cuda_graph)
    trainer = L.Trainer(accelerator="cuda", devices=1, max_steps=40, limit_val_batches=0, log_every_n_steps=50,
                        default_root_dir=tmp_path, callbacks=[*default_callbacks(), SyncWatch(5, 30)],
                        enable_checkpointing=False, strategy=engine)  # fmt: skip
    size = 28 if model_class is LeNet else 96
    data = FashionMNISTDataModule(data_dir=str(data_dir), download=False, resize=size, batch_size=64)
    try:
        trainer.fit(model_class(input_size=size), datamodule=data)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trainer.global_step == 40 and engine.chunk_steps == steps_per_batch


def fit_graphed(
    data_dir: Path, tmp_path: Path, cuda_graph: bool, monkeypatch, epochs: int = 2, ckpt_path=None, **model_args
):
    """LeNetBN with momentum and a cosine schedule, two epochs of 13 batches in chunks of 4 (the last of each short);
    returns the trainer, the weights and the replays of the chunk graph (counted as they hand their steps over)."""
    replays = []
    hand_over = ChunkGraph._hand_over
    monkeypatch.setattr(ChunkGraph, "_hand_over", lambda graph, *args: (replays.append(1), hand_over(graph, *args)))
    trainer = L.Trainer(accelerator="cuda", devices=1, max_epochs=epochs, limit_train_batches=13,
                        limit_val_batches=0, precision="32-true", logger=False, enable_progress_bar=False,
                        default_root_dir=tmp_path, callbacks=[RunCheckpoint(dirpath=tmp_path / "ckpt")],
                        plugins=[AtomicCheckpointIO()], strategy=ChunkedSteps(4, cuda_graph=cuda_graph))  # fmt: skip
    L.seed_everything(0)
    model = LeNetBN(**{"momentum": 0.9, "lr_schedule": "cosine", **model_args})
    data = FashionMNISTDataModule(data_dir=str(data_dir), download=False, batch_size=64)
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    return trainer, {name: value.cpu() for name, value in model.state_dict().items()}, len(replays)


def test_a_replayed_cuda_graph_trains_the_weights_of_eager_chunks(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Momentum, a new learning rate every step, batch norm's statistics: the same as the eager chunks, to rounding
    (fused SGD in the graph, cuDNN's choice of kernels)."""
    eager, eager_weights, none = fit_graphed(data_dir, tmp_path / "eager", False, monkeypatch)
    graphed, graphed_weights, replays = fit_graphed(data_dir, tmp_path / "graphed", True, monkeypatch)
    assert none == 0 and replays == 4 and graphed.global_step == eager.global_step == 26
    for name in eager_weights:
        torch.testing.assert_close(graphed_weights[name], eager_weights[name], rtol=1e-3, atol=1e-4, msg=name)
    assert graphed.optimizers[0].param_groups[0]["lr"] == eager.optimizers[0].param_groups[0]["lr"]


def test_a_graphed_run_resumes_from_its_checkpoint(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Stopped after the first epoch and resumed (a new capture, on the loaded weights and momentum): the run's end
    equals an uninterrupted one, to rounding (a constant rate: a schedule spans the fit's own epochs)."""
    _, straight, _ = fit_graphed(data_dir, tmp_path / "straight", True, monkeypatch, lr_schedule="constant")
    fit_graphed(data_dir, tmp_path / "cut", True, monkeypatch, epochs=1, lr_schedule="constant")
    resumed, weights, replays = fit_graphed(data_dir, tmp_path / "cut", True, monkeypatch, lr_schedule="constant",
                                            ckpt_path=tmp_path / "cut" / "ckpt" / "last.ckpt")  # fmt: skip
    assert resumed.global_step == 26 and replays == 1  # steps 21-24: 14-16 short, 17-20 the warm-up, 25-26 short
    for name in straight:
        torch.testing.assert_close(weights[name], straight[name], rtol=1e-3, atol=1e-4, msg=name)


def test_chunked_steps_on_cuda_train_the_weights_of_one_step_per_batch(data_dir: Path, tmp_path: Path) -> None:
    """The same arithmetic on the GPU, to rounding (cuDNN may pick other kernels between two fits)."""
    weights = []
    for steps_per_batch in (1, 8):
        trainer = L.Trainer(accelerator="cuda", devices=1, max_epochs=2, limit_train_batches=13, limit_val_batches=0,
                            precision="32-true", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, default_root_dir=tmp_path,
                            strategy=ChunkedSteps(steps_per_batch))  # fmt: skip
        L.seed_everything(0)
        model = LeNetBN()
        trainer.fit(model, datamodule=FashionMNISTDataModule(data_dir=str(data_dir), download=False, batch_size=64))
        assert trainer.global_step == 26
        weights.append({name: value.cpu() for name, value in model.state_dict().items()})
    for name in weights[0]:
        torch.testing.assert_close(weights[1][name], weights[0][name], rtol=1e-3, atol=1e-4, msg=name)


def test_divergence_guard_on_cuda_keeps_the_last_good_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    checkpoints = RunCheckpoint(dirpath=tmp_path / "ckpt", last_every_n_steps=2)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=30, limit_val_batches=0, accelerator="cuda", devices=1,
                        logger=False, enable_progress_bar=False, plugins=[AtomicCheckpointIO()],
                        callbacks=[*default_callbacks(), checkpoints, RaiseLearningRate(step=4)])  # fmt: skip
    with pytest.raises(DivergenceError) as error:
        trainer.fit(LeNetBN(), datamodule=FashionMNISTDataModule(data_dir=str(data_dir), download=False))
    step = int(str(error.value).split("global step ")[1].split()[0])
    assert 4 <= step <= 10  # the flag is read a few steps late on CUDA, never after a checkpoint
    good = load_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert good["global_step"] <= step
    assert all(torch.isfinite(value).all() for value in good["state_dict"].values())
