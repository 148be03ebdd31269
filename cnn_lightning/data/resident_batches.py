"""Batches sliced from resident tensors and resized where the model runs.

The book's loader resizes each image with PIL inside worker processes; here the images stay in one uint8 tensor on
the training device, a batch is a single index operation, and ``transforms.v2`` resizes the whole batch there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DistributedSampler
from torchvision.transforms.v2 import functional as TF


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[B, H, W]`` → float ``[B, 1, size, size]`` in [0, 1], equal to PIL ``Resize`` + ``ToTensor``.

    Resizing the uint8 batch (antialiased, as PIL does) before scaling reproduces the book's pipeline exactly;
    scaling first would differ by up to 1/255 (tests/data/test_resident_batches.py asserts bit-identical results).
    """
    x = images.unsqueeze(1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = TF.resize(x, [size, size], antialias=True)
    # Division, as ToTensor does, rather than v2.to_dtype's multiplication by 1/255: bit-identical to the book.
    return x.to(torch.float32).div_(255)


# Batches gathered by one index operation and handed out as views: a gather costs tens of microseconds whatever its
# size, a small step's share (LeNet at batch 32); 32 batches of 256 28 x 28 uint8 images are 6.4 MB.
GATHERED_BATCHES = 32


class TensorBatchLoader:
    """Batches ``(uint8 images, labels)`` by slicing resident tensors; no per-sample Python.

    The index order comes from ``torch.utils.data.DistributedSampler``: seeded, reshuffled per epoch through
    ``set_epoch`` (Lightning calls it on ``loader.sampler``), and a disjoint shard per rank. ``state_dict``
    records the epoch and the batches produced so a mid-epoch resume continues the same order. Under a
    Trainer, ``position_fn`` says how many batches of the epoch the loop has completed: Lightning may fetch a
    batch ahead, so the iterator's own count would skip a batch on resume. Batches are gathered
    :data:`GATHERED_BATCHES` at a time and handed out one by one, as views.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        position_fn: Callable[[], int] | None = None,
        with_index: bool = False,
    ) -> None:
        self.position_fn, self.with_index = position_fn, with_index
        self.images, self.labels, self.batch_size, self.drop_last = images, labels, batch_size, drop_last
        self.sampler = DistributedSampler(
            range(len(labels)), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.batch_sampler = None  # batches come from slicing, not from a torch BatchSampler
        self._resume_at = 0
        self._produced = 0

    def __len__(self) -> int:
        per_rank = self.sampler.num_samples
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.tensor(list(self.sampler), device=self.images.device)
        start = self.position_fn() if self.position_fn is not None else self._resume_at
        self._resume_at = 0
        size = self.batch_size
        for first in range(start, len(self), GATHERED_BATCHES):
            last = min(first + GATHERED_BATCHES, len(self))
            gathered = order[first * size : last * size]
            images, labels = self.images[gathered], self.labels[gathered]
            for batch in range(first, last):
                self._produced = batch + 1
                span = slice((batch - first) * size, (batch + 1 - first) * size)  # views of the gathered block
                yield (images[span], labels[span], gathered[span]) if self.with_index else (images[span], labels[span])
        self._produced = 0

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.sampler.epoch, "batches_produced": self._produced}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.set_epoch(state["epoch"])
        self._resume_at = state["batches_produced"]
