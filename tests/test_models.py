"""Every architecture equals the book's definition: parameter counts, output shapes, named blocks, init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnn_lightning.errors import InputSizeError
from cnn_lightning.models import (
    MODELS,
    VGG,
    DenseBlock,
    Inception,
    NiNBlock,
    Residual,
    TransitionBlock,
    VGGBlock,
)

BOOK_PARAMETERS = {
    "LeNet": (28, 61_706),
    "LeNetBN": (28, 44_878),
    "AlexNet": (224, 46_764_746),
    "VGG": (224, 43_093_322),
    "NiN": (224, 1_992_166),
    "GoogLeNet": (96, 5_977_530),
    "ResNet": (96, 11_178_378),
    "DenseNet": (96, 758_226),
}


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_every_model_is_listed() -> None:
    assert set(MODELS) == set(BOOK_PARAMETERS)


@pytest.mark.parametrize("name", sorted(BOOK_PARAMETERS))
def test_parameter_count_and_output_shape(name: str) -> None:
    size, parameters = BOOK_PARAMETERS[name]
    model = MODELS[name]()
    assert model.input_size == size == MODELS[name].book_input_size()
    assert count(model) == parameters
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(3, 1, size, size)).shape == (3, 10)


def test_vgg_full_width_matches_vgg11() -> None:
    assert count(VGG(channel_ratio=1)) == 128_806_154


def test_xavier_uniform_init_like_the_book() -> None:
    torch.manual_seed(0)
    model = MODELS["LeNet"]()
    for module in model.net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            fan_out = module.weight.shape[0] * module.weight[0, 0].numel()
            bound = (6 / (fan_in + fan_out)) ** 0.5
            assert module.weight.abs().max() <= bound
            assert module.weight.abs().max() > 0.9 * bound  # uniform over the whole range, not PyTorch's default


@pytest.mark.parametrize(
    ("block", "in_shape", "out_shape"),
    [
        (Inception(in_channels=192, c1=64, c2=(96, 128), c3=(16, 32), c4=32), (2, 192, 12, 12), (2, 256, 12, 12)),
        (Residual(in_channels=3, out_channels=3), (4, 3, 6, 6), (4, 3, 6, 6)),
        (Residual(in_channels=3, out_channels=6, use_1x1conv=True, stride=2), (4, 3, 6, 6), (4, 6, 3, 3)),
        (DenseBlock(num_convs=2, in_channels=3, growth_rate=10), (4, 3, 8, 8), (4, 23, 8, 8)),
        (TransitionBlock(in_channels=23, out_channels=10), (4, 23, 8, 8), (4, 10, 4, 4)),
        (
            NiNBlock(in_channels=1, out_channels=96, kernel_size=11, stride=4, padding=0),
            (1, 1, 224, 224),
            (1, 96, 54, 54),
        ),
        (VGGBlock(num_convs=2, in_channels=3, out_channels=16), (2, 3, 32, 32), (2, 16, 16, 16)),
    ],
)
def test_named_block_shapes(block: nn.Module, in_shape: tuple, out_shape: tuple) -> None:
    """The shapes printed in the book's sections on each block."""
    assert block(torch.rand(in_shape)).shape == out_shape


@pytest.mark.parametrize(("name", "size"), [("AlexNet", 32), ("LeNet", 8), ("NiN", 40)])
def test_too_small_input_is_refused_clearly(name: str, size: int) -> None:
    with pytest.raises(InputSizeError, match=rf"{name} cannot take {size}x{size} images.*book size"):
        MODELS[name](input_size=size)


def test_other_sizes_rebuild_the_head() -> None:
    model = MODELS["LeNet"](input_size=32)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)


def test_hyperparameters_round_trip() -> None:
    model = MODELS["DenseNet"](lr=0.2, growth_rate=16)
    assert model.hparams.lr == 0.2
    assert model.hparams.growth_rate == 16
    assert model.hparams.input_size == 96
    assert type(model)(**model.hparams).hparams == model.hparams
