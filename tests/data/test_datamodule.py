"""The Fashion-MNIST data module on the real data: sizes, values, splits, offline lookup, errors, resize."""

from __future__ import annotations

from pathlib import Path

import torch

from cnn_lightning.data.datamodule import FashionMNISTDataModule


def test_splits_on_real_data(data_dir: Path) -> None:
    dm = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=100, val_size=5000)
    dm.setup("fit")
    sizes = {name: len(dm.split(name)[1]) for name in ("train", "val", "test")}
    assert sizes == {"train": 55_000, "val": 5_000, "test": 10_000}
    images, labels = dm.split("train")
    assert images.dtype == torch.uint8 and images.shape[1:] == (28, 28)
    assert labels.dtype == torch.int64 and set(labels.unique().tolist()) == set(range(10))
    assert dm.classes[9] == "Ankle boot" and dm.num_classes == 10
    # The split is a seeded partition of the 60k training images.
    again = FashionMNISTDataModule(data_dir=str(data_dir), seed=0)
    again.setup("fit")
    assert torch.equal(again.split("val")[0], dm.split("val")[0])
    other = FashionMNISTDataModule(data_dir=str(data_dir), seed=1)
    other.setup("fit")
    assert not torch.equal(other.split("val")[0], dm.split("val")[0])


def test_val_on_test_trains_on_all_60k_like_the_book(data_dir: Path) -> None:
    dm = FashionMNISTDataModule(data_dir=str(data_dir), val_on_test=True)
    dm.setup("fit")
    assert len(dm.split("train")[1]) == 60_000
    assert dm.split("val")[0] is dm.split("test")[0]


def test_batches_are_resized_floats_in_unit_range(data_dir: Path) -> None:
    dm = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=64, resize=96)
    dm.setup("fit")
    images, labels = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert images.shape == (64, 1, 96, 96) and images.dtype == torch.float32
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.5
    assert labels.shape == (64,)
