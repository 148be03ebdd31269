"""Small datasets in the idx format of MNIST, KMNIST and Fashion-MNIST, written by the tests themselves: neither MNIST
nor KMNIST can be downloaded here. The format (LeCun's): a big-endian magic number (``0x0803`` for three dimensions of
unsigned bytes, ``0x0801`` for one), each dimension as a big-endian int32, then the bytes."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import torch

SPLITS = {"train": "train", "test": "t10k"}


def idx_bytes(tensor: torch.Tensor) -> bytes:
    """``tensor`` (uint8) as an idx file."""
    header = struct.pack(">HBB", 0, 0x08, tensor.dim()) + struct.pack(f">{tensor.dim()}I", *tensor.shape)
    return header + tensor.contiguous().numpy().tobytes()


def class_images(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``[N, 28, 28]`` uint8 images a network can tell apart: class k a bright bar at rows 2k+4..2k+7, over noise."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 40, (len(labels), 28, 28), generator=generator, dtype=torch.uint8)
    for index, label in enumerate(labels.tolist()):
        images[index, 2 * label + 4 : 2 * label + 8, 4:24] = 230
    return images


def write_dataset(folder: Path, *, train: int = 300, test: int = 100, compress: bool = False, seed: int = 0) -> dict:
    """The four files of a dataset with ``train`` and ``test`` images into ``folder`` (``*.gz`` with ``compress``);
    returns ``{"train": (images, labels), "test": (images, labels)}``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for offset, (split, prefix) in enumerate(SPLITS.items()):
        count = train if split == "train" else test
        labels = torch.arange(count, dtype=torch.uint8) % 10
        images = class_images(labels, seed + offset)
        for kind, tensor in (("images-idx3", images), ("labels-idx1", labels)):
            data = idx_bytes(tensor)
            name = f"{prefix}-{kind}-ubyte"
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        written[split] = (images, labels.long())
    return written
