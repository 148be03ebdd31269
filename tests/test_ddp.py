"""Multi-process training through Lightning's DDP, and the per-rank shards the data module hands each process."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import lightning as L
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnn_lightning.callbacks.dashboards import SETUP_TAG, parse_setup_markdown
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.fashion_mnist import CLASSES
from cnn_lightning.data.resident_batches import TensorBatchLoader
from cnn_lightning.models import LeNet
from tests.conftest import REPO, run_cli

CLOSING_LINE = re.compile(r"^loss [\d.]+, train acc [\d.]+, val acc [\d.]+, test acc [\d.]+$")
SHORT_FIT = (
    "--trainer.max_epochs=1",
    "--trainer.limit_val_batches=2",
    "--trainer.limit_test_batches=2",
    "--trainer.enable_progress_bar=false",
    "--data.batch_size=64",
)


@pytest.mark.slow
def test_cli_fit_with_ddp_on_two_cpu_processes(tmp_path: Path, data_dir: Path) -> None:
    """A real ``fit`` through the CLI with two gloo processes: it ends normally, rank 0 alone prints the closing
    line, the run's resolved setup says two processes under DDP, and the dashboards pool both processes.

    LeNetBN for 20 steps: enough for its evaluation to predict several classes, which the pooling check needs (an
    untrained model predicts one class for everything, identically on every shard, pooled or not)."""
    result = run_cli(
        "fit",
        f"--config={REPO / 'configs' / 'lenet_bn.yaml'}",
        f"--data.data_dir={data_dir}",
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--trainer.limit_train_batches=20",
        *SHORT_FIT,
        cwd=tmp_path,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "distributed_backend=gloo" in output
    assert "Starting with 2 processes" in output
    assert len([line for line in result.stdout.splitlines() if CLOSING_LINE.match(line)]) == 1, result.stdout
    (run,) = (tmp_path / "lightning_logs").glob("*/version_*")  # rank 0's run only
    events = EventAccumulator(str(run))
    events.Reload()
    setup = parse_setup_markdown(events.Tensors(f"{SETUP_TAG}/text_summary")[0].tensor_proto.string_val[0].decode())
    assert (setup["world_size"], setup["strategy"], setup["global_batch"]) == ("2", "DDPStrategy", "128")
    # Rank 0 alone draws, once per validation epoch, from the confusion matrix summed over both processes.
    assert len(events.Images("views/val_confusion_matrix")) == 1
    assert len(events.Images("views/test_misclassified")) == 1
    # The unshuffled validation shards of 2 ranks × 2 batches × 64 are together the split's first 256 images:
    # per-class accuracies weighted by those classes' counts give the synced val/acc only if the matrix was summed.
    data = FashionMNISTDataModule(data_dir=str(data_dir))
    data.setup("fit")
    support = torch.bincount(data.split("val")[1][:256], minlength=len(CLASSES))
    per_class = torch.tensor([events.Scalars(f"val_class_acc/{name}")[-1].value for name in CLASSES])
    overall = float((per_class * support).sum() / support.sum())
    assert overall == pytest.approx(events.Scalars("val/acc")[-1].value, abs=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="SyncBatchNorm needs CUDA: PyTorch refuses it on CPU")
def test_cli_fit_with_ddp_and_sync_batchnorm_on_gpus(tmp_path: Path, data_dir: Path) -> None:
    """LeNetBN under DDP with ``sync_batchnorm``: Lightning swaps in SyncBatchNorm (GPU only) and the fit ends."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") or ",".join(map(str, range(torch.cuda.device_count())))
    result = run_cli(
        "fit",
        f"--config={REPO / 'configs' / 'lenet_bn.yaml'}",
        f"--data.data_dir={data_dir}",
        "--trainer.accelerator=gpu",
        f"--trainer.devices={torch.cuda.device_count()}",
        "--trainer.strategy=ddp",
        "--trainer.sync_batchnorm=true",
        "--trainer.limit_train_batches=4",
        *SHORT_FIT,
        cwd=tmp_path,
        timeout=300,
        env={"CUDA_VISIBLE_DEVICES": visible},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert len([line for line in result.stdout.splitlines() if CLOSING_LINE.match(line)]) == 1


def _epoch_shards(loaders: list[TensorBatchLoader], epoch: int) -> list[torch.Tensor]:
    """The dataset indices each rank's loader yields in ``epoch`` (the labels are the indices themselves)."""
    shards = []
    for loader in loaders:
        loader.sampler.set_epoch(epoch)
        batches = [labels for _, labels in loader]
        assert len(batches) == len(loader)  # every rank takes the same number of steps, or DDP would hang
        shards.append(torch.cat(batches))
    return shards


@pytest.mark.parametrize("size", [1000, 1001])
@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("shuffle", [True, False], ids=["train", "eval"])
def test_rank_shards_partition_the_data_every_epoch(size: int, world_size: int, shuffle: bool) -> None:
    """Each rank's indices are distinct and together cover the data set in every epoch.

    When ``size`` is not divisible by ``world_size``, DistributedSampler pads the epoch's order with its first
    ``padding`` indices so that all ranks take equally many steps: exactly ``padding`` examples are then seen twice
    in that epoch (by two different ranks), none more often, and none is missing.
    """
    ids = torch.arange(size)
    loaders = [
        TensorBatchLoader(ids, ids, batch_size=64, shuffle=shuffle, seed=7, rank=rank, world_size=world_size)
        for rank in range(world_size)
    ]
    per_rank = math.ceil(size / world_size)
    padding = per_rank * world_size - size
    epochs = [_epoch_shards(loaders, epoch) for epoch in range(3)]
    for shards in epochs:
        for shard in shards:
            assert len(shard) == per_rank
            assert len(set(shard.tolist())) == per_rank  # a rank never gets the same example twice
        counts = torch.bincount(torch.cat(shards), minlength=size)
        assert counts.min() == 1 and counts.max() <= 2
        assert int((counts == 2).sum()) == padding
        for a in range(world_size):
            for b in range(a + 1, world_size):
                assert len(set(shards[a].tolist()) & set(shards[b].tolist())) <= padding
    first_rank_orders = [shards[0] for shards in epochs]
    if shuffle:  # set_epoch reshuffles: a new order, and a new shard, per epoch
        assert not torch.equal(first_rank_orders[0], first_rank_orders[1])
        assert set(first_rank_orders[0].tolist()) != set(first_rank_orders[1].tolist())
        assert not torch.equal(first_rank_orders[1], first_rank_orders[2])
    else:  # evaluation sees the same shard in the same order every time
        assert all(torch.equal(first_rank_orders[0], order) for order in first_rank_orders)


def test_same_seed_and_epoch_give_the_same_order_in_every_process() -> None:
    """Ranks never talk about the order: each derives it from (seed, epoch), so two builds must agree exactly."""
    ids = torch.arange(500)
    first, second = (
        TensorBatchLoader(ids, ids, batch_size=32, shuffle=True, seed=3, rank=1, world_size=2) for _ in range(2)
    )
    first.sampler.set_epoch(4)
    second.sampler.set_epoch(4)
    assert torch.equal(torch.cat([y for _, y in first]), torch.cat([y for _, y in second]))


def test_lightning_advances_the_loader_epoch(data_dir: Path) -> None:
    """The Trainer itself calls ``set_epoch`` on our (non-DataLoader) loader's sampler, so shuffles differ."""
    data = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=32)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=3,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(LeNet(), datamodule=data)
    assert isinstance(trainer.train_dataloader, TensorBatchLoader)
    assert trainer.train_dataloader.sampler.epoch == 2


@pytest.mark.slow
def test_predict_under_ddp_writes_one_file_in_source_order(tmp_path: Path, data_dir: Path) -> None:
    """Two gloo processes each predict their shard; rank 0 gathers them and writes every test image once."""
    trained = run_cli("fit", f"--config={REPO / 'configs' / 'lenet.yaml'}", f"--data.data_dir={data_dir}",
                      "--trainer.max_steps=1", "--trainer.limit_val_batches=0", "--trainer.limit_test_batches=1",
                      "--trainer.enable_progress_bar=false", cwd=tmp_path)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    result = run_cli(
        *("predict", "--ckpt_path=lightning_logs/lenet/version_0", f"--data.data_dir={data_dir}"),
        *("--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"),
        *("--trainer.enable_progress_bar=false", "--data.batch_size=512"),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("Predictions: ")]
    rows = (tmp_path / line.removeprefix("Predictions: ").split()[0]).read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == [f"test:{index}" for index in range(10_000)]
