"""Every architecture equals the book's definition: parameter counts, output shapes, named blocks, init."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from cnn_lightning.errors import ConfigError, InputSizeError
from cnn_lightning.models import (
    MODELS,
    VGG,
    DenseBlock,
    DenseNet,
    Inception,
    LeNet,
    NiNBlock,
    Residual,
    ResNet,
    TransitionBlock,
    VGGBlock,
)
from cnn_lightning.training.network_check import book_input_size


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parameter_count_and_output_shape(name: str) -> None:
    size, parameters = MODELS[name].record.input_size, MODELS[name].record.num_params
    model = MODELS[name]()
    assert model.input_size == size == book_input_size(MODELS[name])
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


@pytest.mark.parametrize(
    ("model_class", "old_layout"),
    [
        (LeNet, lambda net: nn.Sequential(*net.features, *net.head)),
        (ResNet, lambda net: nn.Sequential(net.b1, net.b2, net.b3, net.b4, net.b5, *net.head)),
        (DenseNet, lambda net: nn.Sequential(*list(net.children())[:-1], *net.head)),
    ],
)
def test_checkpoints_from_before_the_named_stages_still_load(model_class, old_layout, tmp_path: Path) -> None:
    """A checkpoint keyed by position (``net.13.weight``), as every run before the stages had names wrote it."""
    torch.manual_seed(0)
    trained = model_class()
    state = {f"net.{key}": value for key, value in old_layout(trained.net).state_dict().items()}
    assert set(state) != {k for k in trained.state_dict() if k.startswith("net.")}  # really the old names
    path = tmp_path / "old.ckpt"
    hparams = dict(trained.hparams)
    torch.save({"state_dict": state, "hyper_parameters": hparams, "pytorch-lightning_version": "2.6.6"}, path)
    loaded = model_class.load_from_checkpoint(path)
    for (name, a), (_, b) in zip(trained.state_dict().items(), loaded.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_a_checkpoint_of_another_shape_is_refused_with_the_reason() -> None:
    other = nn.Sequential(*LeNet(input_size=32).net.children())  # positional keys, other shapes
    state = {f"net.{key}": value for key, value in other.state_dict().items()}
    with pytest.raises(ConfigError, match="does not match LeNet as configured"):
        LeNet().upgrade_state_dict(state)
