"""ResNet-18 (He et al. 2016) as in D2L §8.6."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.models.stems import stem
from cnn_lightning.training.classifier import Classifier


class Residual(nn.Module):
    """Two 3×3 conv-BN layers plus the identity, or a 1×1 convolution when shape or stride changes."""

    def __init__(self, *, in_channels: int, out_channels: int, use_1x1conv: bool = False, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride) if use_1x1conv else None
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return F.relu(y + x)


def resnet_stage(
    *, in_channels: int, out_channels: int, num_residuals: int, first_stage: bool = False
) -> nn.Sequential:
    """Residual blocks of one resolution; all but the first stage halve it and change width in block one."""
    blocks = []
    for index in range(num_residuals):
        if index == 0 and not first_stage:
            blocks.append(Residual(in_channels=in_channels, out_channels=out_channels, use_1x1conv=True, stride=2))
        else:
            blocks.append(Residual(in_channels=out_channels, out_channels=out_channels))
    return nn.Sequential(*blocks)


class ResNet(Classifier):
    """The book's ResNet-18: stem, four stages of two residual blocks (64, 128, 256, 512), global pool, fc."""

    record = ModelRecord(
        title="ResNet-18",
        book_section="8.6",
        config="resnet.yaml",
        input_size=96,
        num_params=11_178_378,
        lr=0.05,
        batch_size=256,
        book_accuracy=BookAccuracy(0.912, 0.669, 0.924),
        book_examples_per_sec=4_600,
    )

    def __init__(self, *, lr: float = 0.05, input_size: int = 96, **kwargs: Any) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def build_network(self) -> nn.Module:
        stages = OrderedDict(
            b1=stem(self.hparams.in_channels),
            b2=resnet_stage(in_channels=64, out_channels=64, num_residuals=2, first_stage=True),
            b3=resnet_stage(in_channels=64, out_channels=128, num_residuals=2),
            b4=resnet_stage(in_channels=128, out_channels=256, num_residuals=2),
            b5=resnet_stage(in_channels=256, out_channels=512, num_residuals=2),
        )
        # Built after the stages, in the book's order, so that a seed gives the same initial weights as before.
        classes = self.hparams.num_classes
        stages["head"] = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, classes))
        return nn.Sequential(stages)
