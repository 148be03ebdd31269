"""Network in Network (Lin et al. 2013) as in D2L §8.3."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.training.classifier import Classifier


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

    record = ModelRecord(
        title="Network in Network",
        book_section="8.3",
        config="nin.yaml",
        input_size=224,
        num_params=1_992_166,
        lr=0.1,
        batch_size=128,
        book_accuracy=BookAccuracy(0.833, 0.100, 0.879),
        book_examples_per_sec=3_200,
    )

    def __init__(self, *, lr: float = 0.1, input_size: int = 224, dropout: float = 0.5, **kwargs: Any) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def build_network(self) -> nn.Module:
        hp = self.hparams
        features = nn.Sequential(
            NiNBlock(in_channels=hp.in_channels, out_channels=96, kernel_size=11, stride=4, padding=0),
            nn.MaxPool2d(3, stride=2),
            NiNBlock(in_channels=96, out_channels=256, kernel_size=5, stride=1, padding=2),
            nn.MaxPool2d(3, stride=2),
            NiNBlock(in_channels=256, out_channels=384, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(3, stride=2),
        )
        # The last NiN block has one channel per class; global average pooling turns them into the scores.
        head = nn.Sequential(
            nn.Dropout(hp.dropout),
            NiNBlock(in_channels=384, out_channels=hp.num_classes, kernel_size=3, stride=1, padding=1),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )
        return nn.Sequential(OrderedDict(features=features, head=head))
