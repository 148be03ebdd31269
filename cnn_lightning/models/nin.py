"""Network in Network (Lin et al. 2013) as in D2L §8.3."""

from __future__ import annotations

from typing import Any

from torch import nn

from cnn_lightning.classifier import Classifier


class NiNBlock(nn.Sequential):
    """A convolution followed by two 1×1 convolutions (per-pixel fully connected layers), each with ReLU."""

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=1),
            nn.ReLU(),
        )


class NiN(Classifier):
    """Four NiN blocks (11/4, 5, 3, 3) with max-pools and dropout; global average pooling replaces the fc head."""

    def __init__(self, *, lr: float = 0.1, input_size: int = 224, dropout: float = 0.5, **kwargs: Any) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def build_network(self) -> nn.Module:
        hp = self.hparams
        return nn.Sequential(
            NiNBlock(in_channels=hp.in_channels, out_channels=96, kernel_size=11, stride=4, padding=0),
            nn.MaxPool2d(3, stride=2),
            NiNBlock(in_channels=96, out_channels=256, kernel_size=5, stride=1, padding=2),
            nn.MaxPool2d(3, stride=2),
            NiNBlock(in_channels=256, out_channels=384, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout(hp.dropout),
            NiNBlock(in_channels=384, out_channels=hp.num_classes, kernel_size=3, stride=1, padding=1),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )
