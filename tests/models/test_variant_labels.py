"""Variants are themselves: a network that is not the book's says what differs instead of claiming its figures, a
size it refuses is answered with one it takes, bad structure settings are one line, and runs are labelled by what
differs from the book's experiment (report, HParams)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnn_lightning.errors import ConfigError, InputSizeError
from cnn_lightning.models import (
    AlexNet,
    DenseNet,
    LeNet,
    LeNetBN,
    NiN,
    ResNet,
)
from cnn_lightning.models.variants import differences_from_book, record_line
from cnn_lightning.training.network_check import takes_size


def test_a_variant_says_what_differs_instead_of_the_books_figures() -> None:
    model = LeNet(pooling="max", activation="relu", channels=[6, 16])  # the CLI gives lists: same as the book's
    assert differences_from_book(model) == ["activation relu (book: sigmoid)", "pooling max (book: avg)"]
    line = record_line(model)
    assert line.startswith("Variant of the book's D2L §7.6 LeNet") and "0.806" not in line
    assert differences_from_book(ResNet(blocks_per_stage=(3, 4, 6, 3))) == [
        "blocks_per_stage [3, 4, 6, 3] (book: [2, 2, 2, 2])"
    ]
    assert differences_from_book(LeNet(init="kaiming", input_size=32)) == [
        "input_size 32 (book: 28)",
        "init kaiming (book: xavier)",
    ]
    assert differences_from_book(DenseNet(memory_efficient=True, lr=0.3)) == []  # same network, other training

    class MyLeNet(LeNet):
        pass

    assert differences_from_book(MyLeNet()) == ["class MyLeNet (derived from LeNet)"]


def test_a_variant_refusing_its_book_size_is_told_a_size_it_takes() -> None:
    settings = {"channels": (6, 16, 32), "kernel_sizes": (5, 5, 5), "paddings": (2, 0, 0)}
    with pytest.raises(InputSizeError, match=r"28 is its book size.*--model.init_args.input_size (\d+)") as error:
        LeNet(**settings)
    size = int(str(error.value).rsplit("input_size ", 1)[1].split(",")[0])
    assert takes_size(LeNet(**settings, input_size=size), size) and not takes_size(
        LeNet(**settings, input_size=size), 28
    )
    assert LeNet(**settings, input_size=size)(torch.rand(2, 1, size, size)).shape == (2, 10)
    with pytest.raises(InputSizeError, match=r"book size 224 .*smallest size it takes is (\d+)"):
        AlexNet(input_size=28)


@pytest.mark.parametrize(
    ("model_class", "settings", "message"),
    [
        (LeNet, {"channels": (6, 16), "kernel_sizes": (5,)}, "must be equally long"),
        (LeNet, {"activation": "relux"}, "activation takes one of sigmoid, relu"),
        (LeNet, {"dropout": 1.5}, "dropout must be in"),
        (LeNetBN, {"batch_norm_layers": ("conv3",)}, "names no layer conv3: choose among conv1, conv2, fc1, fc2"),
        (LeNetBN, {"batch_norm": "center", "scratch_batch_norm": True}, "full batch norm only"),
        (ResNet, {"blocks_per_stage": (2, 0)}, "blocks_per_stage takes a list of whole numbers of at least 1"),
        (NiN, {"blocks_per_stage": (1, 1)}, "one count per stage"),
        (DenseNet, {"compression": 0.0}, "compression is the share of channels"),
        (AlexNet, {"width": 0.0}, "width must be positive"),
    ],
)
def test_bad_structure_settings_are_one_clear_line(model_class: type, settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        model_class(**settings)
    assert "\n" not in str(error.value) and "--model.init_args." in str(error.value)


def test_runs_are_labelled_by_what_differs_from_the_books_experiment() -> None:
    """report's variant column and the HParams tab's: the settings (and the data) that are not the book's."""
    from cnn_lightning.loggers.tensorboard import user_settings
    from cnn_lightning.models.variants import variant_label
    from tests.models.own_lenet import WideLeNet

    assert variant_label(LeNet, dict(LeNet(lr=0.3).hparams)) == "book"  # training settings are not the network
    assert variant_label(LeNet, {"pooling": "max", "channels": [6, 16]}) == "pooling=max"
    assert variant_label(LeNet, {}, "mnist") == "dataset=mnist"
    assert variant_label(ResNet, {"blocks_per_stage": [3, 4, 6, 3], "input_size": 224}) == (
        "blocks_per_stage=[3, 4, 6, 3], input_size=224"
    )
    assert variant_label(WideLeNet, dict(WideLeNet().hparams)) == (
        "WideLeNet (from LeNet), activation=relu, channels=[12, 32]"
    )
    assert variant_label(nn.Module, {}) == "Module: not in the book"
    settings = {"_class_path": "cnn_lightning.models.LeNet", "pooling": "max", "data.dataset": "kmnist"}
    assert user_settings(settings) == {
        "Model": "LeNet",
        "Variant": "pooling=max, dataset=kmnist",
        "pooling": "max",
        "data.dataset": "kmnist",
    }
    assert "Variant" not in user_settings({"_class_path": "no.such.Module", "lr": 0.1})
