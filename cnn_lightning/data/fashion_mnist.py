"""Fashion-MNIST's four files (Xiao et al. 2017), or those of another dataset in the same idx format (MNIST,
KMNIST: ``source``, see :mod:`cnn_lightning.data.datasets`): found offline first, decompressed into ``data_dir``
without ever replacing a file, read through torchvision and checked."""

from __future__ import annotations

import gzip
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torchvision.datasets import MNIST, FashionMNIST

from cnn_lightning.errors import DataCorruptError, DataNotFoundError, on_full_disk
from cnn_lightning.output_places import check_folder

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
UPSTREAM = "https://github.com/zalandoresearch/fashion-mnist"
RAW_FILES = {
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}
CLASSES: list[str] = list(FashionMNIST.classes)


def _link_new(source: Path, target: Path) -> None:
    """Place ``source`` at ``target`` unless ``target`` exists: a user's file is never replaced."""
    try:
        os.link(source, target)
    except FileExistsError:
        pass
    finally:
        source.unlink(missing_ok=True)


def _decompress_new(source: Path, target: Path) -> None:
    """``source`` (gzip) decompressed to ``target`` through a temporary file beside it, which no exit leaves behind (a
    damaged file, a full disk, Ctrl+C or SIGTERM); ``target`` appears only whole, with the size its shape implies, and
    with the permissions the user's umask gives new files (the temporary's own are mkstemp's private 0600)."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    temporary = Path(name)
    shape = RAW_FILES[target.name]
    size = f"{math.prod(shape) / 2**20:.0f} MiB"
    intact = f"The files already there are complete; {target.name} needs {size}."
    try:
        full_disk = on_full_disk(f"Fashion-MNIST's {target.name}", target.parent, intact=intact, remove=[temporary])
        with full_disk, os.fdopen(handle, "wb") as tmp, gzip.open(source, "rb") as fin:
            shutil.copyfileobj(fin, tmp, 1 << 20)
        if problem := _idx_problem(temporary, shape):
            raise DataCorruptError(_damaged(source, problem))
        os.chmod(temporary, 0o666 & ~_umask())
        _link_new(temporary, target)
    except (EOFError, gzip.BadGzipFile, zlib.error) as damaged:
        raise DataCorruptError(_damaged(source, str(damaged).rstrip(".") or type(damaged).__name__)) from None
    finally:
        temporary.unlink(missing_ok=True)


def _idx_problem(path: Path, shape: tuple[int, ...]) -> str | None:
    """What is wrong with ``path`` as an IDX file of ``shape``'s rank and item shape, or None: its header (the magic
    number, one big-endian int per dimension) must name them, and its size must be the one the header implies. The
    number of examples is the file's own (smaller sets in the same format are valid; the split is checked on load)."""
    header = 4 + 4 * len(shape)
    with path.open("rb") as file:
        head = file.read(header)
    if len(head) < header or head[:3] != b"\x00\x00\x08" or head[3] != len(shape):
        return f"its header is not that of a {len(shape)}-dimensional IDX file of bytes"
    dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(len(shape)))
    if dims[1:] != shape[1:]:
        return f"its items are {'×'.join(map(str, dims[1:]))}, not {'×'.join(map(str, shape[1:]))}"
    expected = header + math.prod(dims)
    if (got := path.stat().st_size) != expected:
        return f"it holds {got:,} bytes, its header says {expected:,}"
    return None


def _damaged(source: Path, reason: str) -> str:
    return (
        f"{source} is damaged ({reason}): it is truncated or not Fashion-MNIST's, and nothing was decompressed from "
        f"it. Get a good copy: sudo apt-get install --reinstall dataset-fashion-mnist (Debian's, in {DEBIAN_DIR}), or "
        f"download {source.name} from {UPSTREAM} into {source.parent}; or drop {source.parent} from "
        "--data.offline_dirs."
    )


def _umask() -> int:
    """The process's umask (read by setting it: the only portable way), for files created as ``open`` creates them."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def prepare_raw_files(
    data_dir: str | Path, offline_dirs: Sequence[str | Path], download: bool, source: type[MNIST] = FashionMNIST
) -> Path:
    """Make ``data_dir/FashionMNIST/raw`` (``source``'s folder) hold the four decompressed files, offline first;
    return that folder.

    Order: files already in ``data_dir``; gzip files in ``offline_dirs`` (Debian's ``dataset-fashion-mnist``
    re-compresses them, so torchvision's .gz checksums do not apply; the shapes are checked on load instead);
    torchvision's download. Existing files are never overwritten.
    """
    raw = Path(data_dir) / source.__name__ / "raw"
    missing = [name for name in RAW_FILES if not (raw / name).is_file()]
    if not missing:
        return raw
    tried = [f"{raw}: missing {', '.join(missing)}"]
    for folder in map(Path, offline_dirs):
        sources = {name: folder / f"{name}.gz" for name in missing}
        absent = [str(path) for path in sources.values() if not path.is_file()]
        if absent:
            tried.append(f"{folder}: no {', '.join(Path(p).name for p in absent)}")
            continue
        _writable_dir(raw)
        for name, source in sources.items():
            _decompress_new(source, raw / name)
        return raw
    if download:
        _writable_dir(raw)
        try:
            source(str(data_dir), train=True, download=True)
            source(str(data_dir), train=False, download=True)
            return raw
        except Exception as error:  # torchvision raises RuntimeError or URLError variants
            tried.append(f"download from torchvision's mirrors: {str(error).splitlines()[-1].strip()}")
    else:
        tried.append("download: disabled (data.download=false)")
    debian = f"install Debian's copy (`sudo apt-get install dataset-fashion-mnist`, files in {DEBIAN_DIR}), or "
    raise DataNotFoundError(
        f"{_title(source)} was not found. Tried:\n  - "
        + "\n  - ".join(tried)
        + f"\nFix: {debian if source is FashionMNIST else ''}put the four *-ubyte files in {raw} (or their *.gz in "
        "a folder of --data.offline_dirs), or allow network access for the download."
    )


def _title(source: type[MNIST]) -> str:
    return "Fashion-MNIST" if source is FashionMNIST else source.__name__


def _writable_dir(folder: Path) -> None:
    fix = "Choose a writable --data.data_dir."
    check_folder(folder, what="Fashion-MNIST's files", fix=fix, error=DataNotFoundError)
    folder.mkdir(parents=True, exist_ok=True)


def load_split(raw: Path, *, train: bool, source: type[MNIST] = FashionMNIST) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[N, 28, 28]`` uint8 and labels ``[N]`` int64 through torchvision's reader (``source``'s class),
    shapes verified: Fashion-MNIST's the published ones; another dataset's any count of 28 × 28 images with as many
    labels (a test's small files)."""
    prefix = "train" if train else "t10k"
    for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
        if not os.access(raw / name, os.R_OK):
            raise DataCorruptError(f"{raw / name} is not readable. Fix its permissions or choose another data_dir.")
    try:
        dataset = source(str(raw.parent.parent), train=train, download=False)
        images, labels = dataset.data, dataset.targets
    except Exception as error:
        raise DataCorruptError(
            f"A {_title(source)} file in {raw} is truncated or corrupt ({error}). Delete the {prefix}-* files "
            "there and run again to restore them from the offline copy or the download."
        ) from None
    for name, tensor in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        expected = RAW_FILES[name] if source is FashionMNIST else (len(labels), *RAW_FILES[name][1:])
        if tuple(tensor.shape) != expected:
            raise DataCorruptError(
                f"{raw / name} holds shape {tuple(tensor.shape)}, expected {expected}: the file is not "
                f"{_title(source)} or is damaged. Delete it and run again to restore it."
            )
    return images, labels.long()
