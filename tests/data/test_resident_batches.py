"""Resident batches: the fast data path learns exactly what the book's pipeline learns (the same batches, the same
steps, the same weights); the loader covers every example once, reshuffles and resumes mid-epoch."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Subset
from torchvision import transforms
from torchvision.datasets import FashionMNIST

from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.resident_batches import TensorBatchLoader, resize_batch
from cnn_lightning.models import LeNet, ResNet


def train_steps(model: torch.nn.Module, batches: list, lr: float) -> torch.nn.Module:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for images, labels in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    return model


@pytest.mark.parametrize(("model_class", "size", "steps"), [(LeNet, 28, 5), (ResNet, 40, 2)])
def test_same_batches_same_weights(data_dir: Path, model_class: type, size: int, steps: int) -> None:
    torch.manual_seed(0)
    model = model_class(input_size=size)
    batch = 32
    book_data = FashionMNIST(
        str(data_dir), transform=transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    )
    book_batches = list(DataLoader(Subset(book_data, range(batch * steps)), batch_size=batch, num_workers=2))

    dm = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=batch, resize=size, val_on_test=True)
    dm.setup("fit")
    images, labels = dm.split("train")
    loader = TensorBatchLoader(images[: batch * steps], labels[: batch * steps], batch_size=batch, shuffle=False)
    our_batches = [dm.on_after_batch_transfer(b, 0) for b in loader]

    book = train_steps(copy.deepcopy(model.net), book_batches, lr=0.05)
    ours = train_steps(copy.deepcopy(model.net), our_batches, lr=0.05)
    for (name, a), b in zip(book.state_dict().items(), ours.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # bit-identical: the resized batches are bit-identical


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
