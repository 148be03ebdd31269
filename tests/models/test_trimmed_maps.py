"""``trim_odd_maps``, LeNet's speed setting: a convolution leaves out the last row and column of an odd-sided map,
which the 2×2 pooling after it never reads; same parameters, same outputs in evaluation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnn_lightning.models import LeNet, LeNetBN
from cnn_lightning.models.layers import TrimmedConv2d
from cnn_lightning.models.variants import differences_from_book

SPEEDRUN_LAYOUT = {
    "activation": "relu",
    "pooling": "max",
    "channels": (16, 64, 192),
    "kernel_sizes": (3, 3, 3),
    "paddings": (1, 1, 1),
    "hidden_units": (256,),
    "batch_norm_layers": ("conv1", "conv2", "conv3", "fc1"),
}


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_trimmed_convolution_is_the_full_one_less_its_last_row_and_column(padding: int) -> None:
    torch.manual_seed(0)
    full = nn.Conv2d(3, 5, kernel_size=3, padding=padding)
    trimmed = TrimmedConv2d(3, 5, kernel_size=3, padding=padding)
    trimmed.load_state_dict(full.state_dict())
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(trimmed(x), full(x)[..., :-1, :-1])


def test_only_odd_maps_are_trimmed_and_the_network_keeps_its_weights_and_outputs() -> None:
    torch.manual_seed(0)
    plain = LeNetBN(**SPEEDRUN_LAYOUT)
    trimmed = LeNetBN(**SPEEDRUN_LAYOUT, trim_odd_maps=True)
    convs = [type(m).__name__ for m in trimmed.net.features if isinstance(m, nn.Conv2d)]
    assert convs == ["Conv2d", "Conv2d", "TrimmedConv2d"]  # 28 and 14 px maps are even, conv3's 7 px is not
    trimmed.load_state_dict(plain.state_dict())  # the same keys and shapes: either network loads the other's runs
    x = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(trimmed.eval()(x), plain.eval()(x))
    # Training differs only by batch norm's statistics, taken over the 6×6 positions the pooling reads.
    plain.train()(x), trimmed.train()(x)
    means = [m.running_mean for m in (plain.net.features[9], trimmed.net.features[9])]
    assert isinstance(plain.net.features[9], nn.BatchNorm2d) and not torch.allclose(*means)
    assert "trim_odd_maps True (book: False)" in differences_from_book(trimmed)


def test_the_books_layouts_have_no_odd_map_to_trim() -> None:
    for cls in (LeNet, LeNetBN):
        model = cls(trim_odd_maps=True)
        assert not any(isinstance(m, TrimmedConv2d) for m in model.modules())
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
