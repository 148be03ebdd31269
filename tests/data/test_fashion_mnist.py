"""Fashion-MNIST's files: found offline first, never overwritten, damage named, a missing copy explained."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.fashion_mnist import DEBIAN_DIR, RAW_FILES, prepare_raw_files
from cnn_lightning.errors import DataCorruptError, DataNotFoundError, DiskFullError
from tests.conftest import SmallDisk


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


@pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="Debian's dataset-fashion-mnist is not installed here")
def test_a_full_disk_while_decompressing_is_one_line_and_leaves_nothing(small_disk: SmallDisk) -> None:
    raw = small_disk.root / "data" / "FashionMNIST" / "raw"
    with pytest.raises(DiskFullError) as refused:
        prepare_raw_files(small_disk.root / "data", [DEBIAN_DIR], download=False)
    message = str(refused.value)
    assert message.startswith(
        f"No space left on device: Fashion-MNIST's train-images-idx3-ubyte could not be written to {raw}"
    )
    assert "needs 45 MiB" in message
    assert list(raw.iterdir()) == []  # no partial file, no temporary
