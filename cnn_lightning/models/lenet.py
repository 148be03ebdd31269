"""LeNet-5 (LeCun et al. 1998) as in D2L §7.6, and with batch normalization (Ioffe & Szegedy 2015) as in §8.5.

Both are built by :func:`lenet_features` and :func:`lenet_head` from their settings; the defaults are the book's
networks, layer for layer (same modules at the same indices, so the same checkpoint keys and, for a seed, the same
initial weights). §7.6's exercises change the settings: max pooling, ReLU, other windows, widths and layer counts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from cnn_lightning.errors import ConfigError
from cnn_lightning.models.batch_norm import BatchNormKind, batch_norm_layer
from cnn_lightning.models.layers import (
    Activation,
    Pooling,
    TrimmedConv2d,
    activation,
    pooling,
    positive_ints,
    probability,
    same_length,
)
from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.scratch.shapes import flat_features
from cnn_lightning.training.classifier import Classifier

#: LeNet's layout settings (§7.6's exercises; ``trim_odd_maps`` for speed), shared by both networks.
LAYOUT = ("activation", "pooling", "channels", "kernel_sizes", "paddings", "hidden_units", "dropout", "trim_odd_maps")

#: The normalization after a layer, given its name (``conv1``, ``fc2``…), its width and 2 or 4 input dimensions.
Norm = Callable[[str, int, int], "nn.Module | None"]


def lenet_features(
    *,
    in_channels: int,
    channels: Sequence[int],
    kernel_sizes: Sequence[int],
    paddings: Sequence[int],
    activation_name: str,
    pooling_name: str,
    input_size: int,
    trim_odd_maps: bool = False,
    norm: Norm | None = None,
) -> nn.Sequential:
    """Convolution, [norm], activation and 2×2 stride-2 pooling for each entry of ``channels``; with
    ``trim_odd_maps``, a convolution whose map of ``input_size`` inputs comes out odd-sided is a
    :class:`TrimmedConv2d`, leaving out the row and column the pooling drops."""
    layers: list[nn.Module] = []
    size = input_size
    for index, (width, kernel, padding) in enumerate(zip(channels, kernel_sizes, paddings, strict=True), start=1):
        side = size + 2 * padding - kernel + 1
        trim = trim_odd_maps and side % 2 == 1 and side > 1
        layers.append((TrimmedConv2d if trim else nn.Conv2d)(in_channels, width, kernel_size=kernel, padding=padding))
        if norm is not None and (layer := norm(f"conv{index}", width, 4)) is not None:
            layers.append(layer)
        layers += [activation(activation_name, flag="--model.init_args.activation")]
        layers += [pooling(pooling_name, flag="--model.init_args.pooling")]
        in_channels, size = width, (side - trim) // 2
    return nn.Sequential(*layers)


def lenet_head(
    *,
    in_features: int,
    hidden_units: Sequence[int],
    num_classes: int,
    activation_name: str,
    dropout: float = 0.0,
    norm: Norm | None = None,
) -> nn.Sequential:
    """Flatten, then a fully connected layer, [norm], activation and [dropout] per hidden width, then the output."""
    layers: list[nn.Module] = [nn.Flatten()]
    for index, width in enumerate(hidden_units, start=1):
        layers.append(nn.Linear(in_features, width))
        if norm is not None and (layer := norm(f"fc{index}", width, 2)) is not None:
            layers.append(layer)
        layers.append(activation(activation_name, flag="--model.init_args.activation"))
        if dropout:  # no module at all by default: the book's indices, hence checkpoint keys, stay
            layers.append(nn.Dropout(dropout))
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


def _check_layout(hp: Any) -> None:
    positive_ints(hp.channels, flag="--model.init_args.channels")
    positive_ints(hp.kernel_sizes, flag="--model.init_args.kernel_sizes")
    positive_ints(hp.paddings, flag="--model.init_args.paddings", allow_zero=True)
    positive_ints(hp.hidden_units, flag="--model.init_args.hidden_units", allow_empty=True)
    same_length({f"--model.init_args.{name}": hp[name] for name in ("channels", "kernel_sizes", "paddings")})


def lenet_network(hp: Any, *, input_size: int, norm: Norm | None = None) -> nn.Sequential:
    """LeNet's ``features`` and ``head`` from a model's layout settings (its hyperparameters)."""
    _check_layout(hp)
    probability(hp.dropout, flag="--model.init_args.dropout")
    features = lenet_features(
        in_channels=hp.in_channels,
        channels=hp.channels,
        kernel_sizes=hp.kernel_sizes,
        paddings=hp.paddings,
        activation_name=hp.activation,
        pooling_name=hp.pooling,
        input_size=input_size,
        trim_odd_maps=hp.get("trim_odd_maps", False),  # absent from runs saved before the setting
        norm=norm,
    )
    flat = flat_features(features, in_channels=hp.in_channels, input_size=input_size)
    head = lenet_head(
        in_features=flat,
        hidden_units=hp.hidden_units,
        num_classes=hp.num_classes,
        activation_name=hp.activation,
        dropout=hp.dropout,
        norm=norm,
    )
    return nn.Sequential(OrderedDict(features=features, head=head))


class LeNet(Classifier):
    """The book's LeNet: two 5×5 convolutions with sigmoid and average pooling, then fc 120-84-10 with sigmoid.

    Args:
        activation: after every convolution and hidden fc layer (the book: sigmoid).
        pooling: the 2×2 stride-2 pooling after every convolution, ``avg`` (the book) or ``max``.
        channels: output channels of each convolution; as many convolution blocks as entries.
        kernel_sizes: window of each convolution.
        paddings: padding of each convolution (the book pads the first by 2 to keep 28 px, the second not).
        hidden_units: width of each hidden fully connected layer; the output layer follows them.
        dropout: after each hidden fc layer's activation (the book: none; AlexNet's §8.1 exercise 7 adds it).
        trim_odd_maps: a speed setting: a convolution whose output map has an odd side leaves out its last row and
            column, which the pooling after it drops (a 7×7 map pooled to 3×3); the same parameters and, in
            evaluation, the same outputs. Training differs only where batch norm follows (its batch statistics
            then leave them out too). No effect on the book's layouts, whose maps are even.
    """

    record = ModelRecord(
        title="LeNet (sigmoid, average pooling)",
        book_section="7.6",
        config="lenet.yaml",
        input_size=28,
        num_params=61_706,
        lr=0.9,
        batch_size=256,
        book_accuracy=BookAccuracy(median=0.806, low=0.761, high=0.826),
        book_examples_per_sec=88_500,
        structure=LAYOUT,
    )

    def __init__(
        self,
        *,
        lr: float = 0.9,
        input_size: int = 28,
        activation: Activation = "sigmoid",
        pooling: Pooling = "avg",
        channels: tuple[int, ...] = (6, 16),
        kernel_sizes: tuple[int, ...] = (5, 5),
        paddings: tuple[int, ...] = (2, 0),
        hidden_units: tuple[int, ...] = (120, 84),
        dropout: float = 0.0,
        trim_odd_maps: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def build_network(self) -> nn.Module:
        return lenet_network(self.hparams, input_size=self.input_size)


class LeNetBN(Classifier):
    """The book's LeNet with batch norm: first convolution unpadded, BN after each convolution and hidden fc.

    Args:
        scratch_batch_norm: use the book's from-scratch ``BatchNorm`` (§8.5.3, :mod:`cnn_lightning.scratch`)
            instead of ``nn.BatchNorm1d/2d``; same parameters, outputs and running statistics.
        batch_norm: its kind (§8.5 exercises 4 and 5): ``full`` (the book), ``center`` (only the mean removed),
            ``scale`` (only divided by the standard deviation) or ``fixed`` (γ = 1 and β = 0, not learned).
        batch_norm_layers: the layers followed by batch norm (§8.5 exercise 3), of ``conv1``, ``conv2``, ``fc1``,
            ``fc2`` (the book: all four; ``conv3``… and ``fc3``… where the layout has more); ``[]`` leaves LeNet
            with the first convolution unpadded.
        activation, pooling, channels, kernel_sizes, paddings, hidden_units, dropout, trim_odd_maps: the layout, as
            :class:`LeNet`'s settings (the defaults are this network's: sigmoid, average pooling, 6 and 16 channels
            of 5×5 unpadded, fc 120-84); the speedrun recipes widen it.
    """

    record = ModelRecord(
        title="LeNet with batch normalization",
        book_section="8.5",
        config="lenet_bn.yaml",
        input_size=28,
        num_params=44_878,
        lr=1.0,
        batch_size=256,
        book_accuracy=BookAccuracy(median=0.853, low=0.518, high=0.892),
        book_examples_per_sec=62_200,
        structure=(
            "batch_norm",
            "batch_norm_layers",
            *LAYOUT,
        ),
    )

    channels_last_pays_on_cpu = False  # its batch norm over 6- and 16-channel maps ran at half speed in NHWC
    LAYERS = ("conv1", "conv2", "fc1", "fc2")  # the book's network's

    def __init__(
        self,
        *,
        lr: float = 1.0,
        input_size: int = 28,
        scratch_batch_norm: bool = False,
        batch_norm: BatchNormKind = "full",
        batch_norm_layers: tuple[str, ...] = LAYERS,
        activation: Activation = "sigmoid",
        pooling: Pooling = "avg",
        channels: tuple[int, ...] = (6, 16),
        kernel_sizes: tuple[int, ...] = (5, 5),
        paddings: tuple[int, ...] = (0, 0),
        hidden_units: tuple[int, ...] = (120, 84),
        dropout: float = 0.0,
        trim_odd_maps: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def layer_names(self) -> tuple[str, ...]:
        """The layers batch norm can follow: ``conv1``… and ``fc1``… of this layout."""
        hp = self.hparams
        convs = (f"conv{index}" for index in range(1, len(hp.channels) + 1))
        return (*convs, *(f"fc{index}" for index in range(1, len(hp.hidden_units) + 1)))

    def batch_norm(self, num_features: int, *, dims: int) -> nn.Module:
        """The normalization layer; a hook for the from-scratch variant."""
        hp = self.hparams
        return batch_norm_layer(hp.batch_norm, num_features, dims=dims, scratch=hp.scratch_batch_norm)

    def _norm(self, layer: str, width: int, dims: int) -> nn.Module | None:
        return self.batch_norm(width, dims=dims) if layer in self.hparams.batch_norm_layers else None

    def build_network(self) -> nn.Module:
        hp = self.hparams
        if unknown := sorted(set(hp.batch_norm_layers) - set(self.layer_names())):
            raise ConfigError(
                f"--model.init_args.batch_norm_layers names no layer {', '.join(unknown)}: choose among "
                f"{', '.join(self.layer_names())} (e.g. [conv1, conv2])."
            )
        return lenet_network(hp, input_size=self.input_size, norm=self._norm)
