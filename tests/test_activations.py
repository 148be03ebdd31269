"""The look inside a network (cnn_lightning/activations.py): layers named as summary names them, the maps its forward
hooks see, the grids drawn from them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnn_lightning.activations import (
    activation_grid,
    capture,
    default_layers,
    examples_of,
    filter_grid,
    find_layers,
    generated_pictures,
    model_inputs,
    shown_layer_names,
)
from cnn_lightning.commands.summary import summarize
from cnn_lightning.errors import ConfigError
from cnn_lightning.models import LeNet, ResNet


@pytest.mark.parametrize("model_class", [LeNet, ResNet])
def test_layers_are_named_as_summary_names_them(model_class: type) -> None:
    model = model_class()
    assert shown_layer_names(model.net) == [row.name for row in summarize(model).rows]
    assert [name for name, _ in find_layers(model.net, ["net.b1", "b1"] if model_class is ResNet else ["features.0"])]


def test_a_wrong_layer_is_one_line_with_the_near_names_and_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as error:
        find_layers(LeNet().net, ["features.1", "feature.4"], "LeNet")
    message = str(error.value)
    assert message.startswith("--layers feature.4: LeNet has no such layer. Did you mean features.4")
    assert "features, features.0, features.1" in message and "head.5" in message and "\n" not in message


def test_the_grid_shows_each_channel_of_the_hooked_output_scaled_over_the_images() -> None:
    torch.manual_seed(0)
    model = LeNet().eval()
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    inputs = model_inputs(images, 28, None)
    found = find_layers(model.net, default_layers(model.net))
    assert [name for name, _ in found] == ["features.0", "features.3"]
    outputs = capture(model.net, inputs, find_layers(model.net, ["features.1", "head.3"]))
    with torch.no_grad():
        expected = torch.sigmoid(model.net.features[0](inputs))  # the first convolution block, after its sigmoid
    assert torch.allclose(outputs["features.1"], expected) and outputs["head.3"].shape == (4, 84)
    grid = activation_grid(inputs, outputs["features.1"])
    assert grid.shape == (3, 4 * 30 + 2, 7 * 30 + 2)  # 4 rows: the input, then 6 channels, 28 px cells, 2 px apart
    channel = expected[:, 2]
    scaled = (channel - channel.min()) / (channel.max() - channel.min())
    assert torch.allclose(grid[0, 2 + 30 * 3 : 30 + 30 * 3, 2 + 30 * 3 : 30 + 30 * 3], scaled[3], atol=1e-6)
    assert torch.equal(grid[0, 2:30, 2:30], inputs[0, 0])  # each row starts with the image
    small = activation_grid(inputs, outputs["head.3"])  # a vector: one 10 x 10 map, enlarged 3 times
    assert small.shape == (3, 4 * 32 + 2, 2 * 32 + 2)
    assert torch.equal(small[0, 2:32, 34:64], F.interpolate(small[None, :1, 2:32, 34:64], size=30)[0, 0])


def test_filters_are_drawn_around_a_grey_zero() -> None:
    model = LeNet()
    with torch.no_grad():
        model.net.features[0].weight[0].zero_()
    grid = filter_grid(model.net.features[0])
    assert grid.shape == (3, 32 + 2, 6 * 32 + 2)  # six 5 x 5 filters, each enlarged to 30 px, 2 px apart
    assert torch.allclose(grid[:, 2:32, 2:32], torch.full((3, 30, 30), 0.5))


def test_images_are_spread_over_the_classes_and_generated_pictures_differ() -> None:
    labels = torch.tensor([4, 2, 2, 4, 1, 2, 4, 4, 2, 4, 2])
    assert examples_of(labels, [2, 4], 8).tolist() == [1, 2, 5, 8, 0, 3, 6, 7]
    assert examples_of(labels, [2, 4, 1], 4).tolist() == [1, 2, 0, 4]
    pictures, names = generated_pictures()
    assert pictures.shape == (8, 28, 28) and pictures.dtype == torch.uint8 and len(set(names)) == 8
    assert len({bytes(picture.numpy()) for picture in pictures}) == 8
