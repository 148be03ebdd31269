"""VGG (Simonyan & Zisserman 2014) as in D2L §8.2: VGG-11 built from VGG blocks."""

from __future__ import annotations

from typing import Any

from torch import nn

from cnn_lightning.classifier import Classifier, flat_features

VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


class VGGBlock(nn.Sequential):
    """``num_convs`` 3×3 convolutions (padding 1) with ReLU, then a 2×2 max-pool that halves the resolution."""

    def __init__(self, *, num_convs: int, in_channels: int, out_channels: int) -> None:
        layers: list[nn.Module] = []
        for index in range(num_convs):
            layers += [nn.Conv2d(in_channels if index == 0 else out_channels, out_channels, 3, padding=1), nn.ReLU()]
        super().__init__(*layers, nn.MaxPool2d(kernel_size=2, stride=2))


class VGG(Classifier):
    """VGG-11; ``channel_ratio`` divides every convolution's width (the book trains ratio 4 to fit its GPUs).

    Args:
        arch: ``(num_convs, out_channels)`` per block.
        channel_ratio: divisor of each block's channels.
        dropout: dropout after each hidden fc layer.
    """

    def __init__(
        self,
        *,
        lr: float = 0.05,
        input_size: int = 224,
        arch: tuple[tuple[int, int], ...] = VGG11,
        channel_ratio: int = 4,
        dropout: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def build_network(self) -> nn.Module:
        hp = self.hparams
        blocks, in_channels = [], hp.in_channels
        for num_convs, channels in hp.arch:
            blocks.append(
                VGGBlock(num_convs=num_convs, in_channels=in_channels, out_channels=channels // hp.channel_ratio)
            )
            in_channels = channels // hp.channel_ratio
        features = nn.Sequential(*blocks, nn.Flatten())
        flat = flat_features(features, in_channels=hp.in_channels, input_size=self.input_size)
        return nn.Sequential(
            *features,
            nn.Linear(flat, 4096),
            nn.ReLU(),
            nn.Dropout(hp.dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(hp.dropout),
            nn.Linear(4096, hp.num_classes),
        )
