"""GoogLeNet (Szegedy et al. 2015) as in D2L §8.4: five stages, nine Inception blocks."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.training.classifier import Classifier


class Inception(nn.Module):
    """Four parallel paths concatenated on channels: 1×1; 1×1→3×3; 1×1→5×5; 3×3 max-pool→1×1.

    Args:
        in_channels: input channels.
        c1: output channels of path 1.
        c2: (reduction, output) channels of path 2.
        c3: (reduction, output) channels of path 3.
        c4: output channels of path 4.
    """

    def __init__(self, *, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int) -> None:
        super().__init__()
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        return torch.cat((p1, p2, p3, p4), dim=1)


def _pool() -> nn.Module:
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class GoogLeNet(Classifier):
    """The book's GoogLeNet for 96×96 images: 7×7 stem, 1×1/3×3 stage, Inception stages 3, 4, 5, fc 1024→10."""

    record = ModelRecord(
        title="GoogLeNet",
        book_section="8.4",
        config="googlenet.yaml",
        input_size=96,
        num_params=5_977_530,
        lr=0.1,
        batch_size=128,
        book_accuracy=BookAccuracy(0.891, 0.100, 0.902),
        book_examples_per_sec=3_400,
    )

    def __init__(self, *, lr: float = 0.1, input_size: int = 96, **kwargs: Any) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def build_network(self) -> nn.Module:
        b1 = nn.Sequential(
            nn.Conv2d(self.hparams.in_channels, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(), _pool()
        )
        b2 = nn.Sequential(
            nn.Conv2d(64, 64, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(64, 192, kernel_size=3, padding=1),
            nn.ReLU(),
            _pool(),
        )
        b3 = nn.Sequential(
            Inception(in_channels=192, c1=64, c2=(96, 128), c3=(16, 32), c4=32),
            Inception(in_channels=256, c1=128, c2=(128, 192), c3=(32, 96), c4=64),
            _pool(),
        )
        b4 = nn.Sequential(
            Inception(in_channels=480, c1=192, c2=(96, 208), c3=(16, 48), c4=64),
            Inception(in_channels=512, c1=160, c2=(112, 224), c3=(24, 64), c4=64),
            Inception(in_channels=512, c1=128, c2=(128, 256), c3=(24, 64), c4=64),
            Inception(in_channels=512, c1=112, c2=(144, 288), c3=(32, 64), c4=64),
            Inception(in_channels=528, c1=256, c2=(160, 320), c3=(32, 128), c4=128),
            _pool(),
        )
        b5 = nn.Sequential(
            Inception(in_channels=832, c1=256, c2=(160, 320), c3=(32, 128), c4=128),
            Inception(in_channels=832, c1=384, c2=(192, 384), c3=(48, 128), c4=128),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )
        head = nn.Linear(1024, self.hparams.num_classes)
        return nn.Sequential(OrderedDict(b1=b1, b2=b2, b3=b3, b4=b4, b5=b5, head=head))
