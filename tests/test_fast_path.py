"""The fast data path learns exactly what the book's pipeline learns: same batches, same steps, same weights."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Subset
from torchvision import transforms
from torchvision.datasets import FashionMNIST

from cnn_lightning.classifier import training_flops
from cnn_lightning.data import FashionMNISTDataModule, TensorBatchLoader
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


def test_channels_last_computes_the_same() -> None:
    """NHWC changes the order of float sums, not the function: its outputs and weight gradients agree with a
    float64 reference as closely as the default layout's do (here, closer)."""
    torch.manual_seed(0)
    net = ResNet(input_size=40).net
    images, labels = torch.rand(16, 1, 40, 40), torch.randint(0, 10, (16,))
    reference, plain = copy.deepcopy(net).double(), copy.deepcopy(net)
    nhwc = copy.deepcopy(net).to(memory_format=torch.channels_last)
    runs = [(reference, images.double()), (plain, images), (nhwc, images.contiguous(memory_format=torch.channels_last))]
    outputs = [model(x) for model, x in runs]
    torch.testing.assert_close(outputs[2].double(), outputs[0], rtol=1e-4, atol=1e-5)
    for output in outputs:
        torch.nn.functional.cross_entropy(output, labels).backward()
    for (name, exact), a, b in zip(reference.named_parameters(), plain.parameters(), nhwc.parameters(), strict=True):
        if name.endswith("weight"):
            scale = exact.grad.abs().max().item()
            error_plain = (a.grad.double() - exact.grad).abs().max().item() / scale
            error_nhwc = (b.grad.double() - exact.grad).abs().max().item() / scale
            assert error_nhwc <= max(2 * error_plain, 1e-4), (name, error_nhwc, error_plain)


def test_flops_per_batch_counts_forward_and_backward() -> None:
    net = LeNet().net
    # Conv and linear multiply-adds of one 28x28 image, twice for FLOPs, three passes (forward, two backward).
    macs = 6 * 25 * 28 * 28 + 16 * 6 * 25 * 10 * 10 + 400 * 120 + 120 * 84 + 84 * 10
    first_conv_input_grad = 6 * 25 * 28 * 28  # no gradient flows to the images
    assert training_flops(net, (8, 1, 28, 28)) == 8 * 2 * (3 * macs - first_conv_input_grad)
