"""Stems shared by more than one of the book's families: the input layers before their first stage."""

from __future__ import annotations

from torch import nn


def stem(in_channels: int) -> nn.Sequential:
    """7×7/2 convolution, batch norm, ReLU and 3×3/2 max-pool, shared by the book's ResNet and DenseNet."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
