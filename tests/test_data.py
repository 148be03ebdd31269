"""The Fashion-MNIST data module on the real data: sizes, values, splits, offline lookup, errors, resize."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch
from torchvision import transforms
from torchvision.datasets import FashionMNIST

from cnn_lightning.data import (
    DEBIAN_DIR,
    RAW_FILES,
    FashionMNISTDataModule,
    TensorBatchLoader,
    prepare_raw_files,
    resize_batch,
)
from cnn_lightning.errors import DataCorruptError, DataNotFoundError


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


@pytest.mark.parametrize("size", [28, 96, 224])
def test_resize_equals_book_pil_pipeline(data_dir: Path, size: int) -> None:
    """Batch resize on tensors reproduces the book's per-image PIL ``Resize`` + ``ToTensor`` (tolerance: exact)."""
    book = FashionMNIST(
        str(data_dir), train=True, transform=transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    )
    expected = torch.stack([book[i][0] for i in range(64)])
    ours = resize_batch(book.data[:64], size)
    assert ours.shape == expected.shape
    assert (ours - expected).abs().max().item() == 0.0


def test_loader_covers_every_example_once_and_reshuffles(data_dir: Path) -> None:
    dm = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=1000)
    dm.setup("fit")
    labels = dm.split("train")[1]
    ids = torch.arange(len(labels))
    loader = TensorBatchLoader(ids, labels, batch_size=1000, shuffle=True, seed=0)
    first = torch.cat([batch for batch, _ in loader])
    assert torch.equal(first.sort().values, ids) and len(loader) == 55
    loader.sampler.set_epoch(1)
    second = torch.cat([batch for batch, _ in loader])
    assert not torch.equal(first, second)
    loader.sampler.set_epoch(0)
    assert torch.equal(torch.cat([batch for batch, _ in loader]), first)  # seeded: same epoch, same order


def test_loader_state_resumes_mid_epoch() -> None:
    ids = torch.arange(100)
    loader = TensorBatchLoader(ids, ids, batch_size=10, shuffle=True, seed=3)
    loader.sampler.set_epoch(2)
    it = iter(loader)
    seen = [next(it)[0] for _ in range(4)]
    state = loader.state_dict()
    rest = [batch for batch, _ in it]
    fresh = TensorBatchLoader(ids, ids, batch_size=10, shuffle=True, seed=3)
    fresh.load_state_dict(state)
    resumed = [batch for batch, _ in fresh]
    assert state == {"epoch": 2, "batches_produced": 4}
    assert all(torch.equal(a, b) for a, b in zip(resumed, rest, strict=True))
    assert len(seen) + len(resumed) == 10


@pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="Debian's dataset-fashion-mnist is not installed here")
def test_offline_copy_from_debian_package(tmp_path: Path) -> None:
    raw = prepare_raw_files(tmp_path, [DEBIAN_DIR], download=False)
    assert raw == tmp_path / "FashionMNIST" / "raw"
    for name in RAW_FILES:
        with gzip.open(Path(DEBIAN_DIR) / f"{name}.gz") as original:
            assert (raw / name).read_bytes() == original.read()
    assert sorted(p.name for p in raw.iterdir()) == sorted(RAW_FILES)  # no temporary files left behind


def test_existing_user_files_are_never_overwritten(tmp_path: Path, data_dir: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(data_dir / "FashionMNIST" / "raw" / "train-images-idx3-ubyte", raw)
    mine = raw / "train-labels-idx1-ubyte"
    mine.write_bytes(b"my own file")
    prepare_raw_files(tmp_path, [DEBIAN_DIR], download=False)
    assert mine.read_bytes() == b"my own file"
    with pytest.raises(DataCorruptError, match=r"train-labels-idx1-ubyte|truncated or corrupt"):
        FashionMNISTDataModule(data_dir=str(tmp_path)).setup("fit")
    assert mine.read_bytes() == b"my own file"


def test_truncated_file_is_named(tmp_path: Path, data_dir: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    shutil.copytree(data_dir / "FashionMNIST" / "raw", raw)
    images = raw / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:100_000])
    with pytest.raises(DataCorruptError, match="t10k") as error:
        FashionMNISTDataModule(data_dir=str(tmp_path)).setup("test")
    assert "Delete" in str(error.value)
    assert images.stat().st_size == 100_000  # left as it was, not re-downloaded over


def test_clear_error_when_nothing_is_found(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as error:
        prepare_raw_files(tmp_path, [tmp_path / "nowhere"], download=True)
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message
    assert "download" in message and "apt-get install dataset-fashion-mnist" in message


def test_unwritable_data_dir_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    with pytest.raises(DataNotFoundError, match="data_dir"):
        prepare_raw_files(target, [DEBIAN_DIR], download=False)
