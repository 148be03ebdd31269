"""LeNet-5 (LeCun et al. 1998) as in D2L §7.6, and with batch normalization (Ioffe & Szegedy 2015) as in §8.5."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.scratch.batch_norm import BatchNorm
from cnn_lightning.scratch.shapes import flat_features
from cnn_lightning.training.classifier import Classifier


class LeNet(Classifier):
    """The book's LeNet: two 5×5 convolutions with sigmoid and average pooling, then fc 120-84-10 with sigmoid."""

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
    )

    def __init__(self, *, lr: float = 0.9, input_size: int = 28, **kwargs: Any) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def build_network(self) -> nn.Module:
        features = nn.Sequential(
            nn.Conv2d(self.hparams.in_channels, 6, kernel_size=5, padding=2),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
        )
        flat = flat_features(features, in_channels=self.hparams.in_channels, input_size=self.input_size)
        head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 120),
            nn.Sigmoid(),
            nn.Linear(120, 84),
            nn.Sigmoid(),
            nn.Linear(84, self.hparams.num_classes),
        )
        return nn.Sequential(OrderedDict(features=features, head=head))


class LeNetBN(Classifier):
    """The book's LeNet with batch norm: first convolution unpadded, BN after each convolution and hidden fc.

    Args:
        scratch_batch_norm: use the book's from-scratch ``BatchNorm`` (§8.5.3, :mod:`cnn_lightning.scratch`)
            instead of ``nn.BatchNorm1d/2d``; same parameters, outputs and running statistics.
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
    )

    channels_last_pays_on_cpu = False  # its batch norm over 6- and 16-channel maps ran at half speed in NHWC

    def __init__(
        self, *, lr: float = 1.0, input_size: int = 28, scratch_batch_norm: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def batch_norm(self, num_features: int, *, dims: int) -> nn.Module:
        """The normalization layer; a hook for the from-scratch variant."""
        if self.hparams.scratch_batch_norm:
            return BatchNorm(num_features, num_dims=dims)
        return nn.BatchNorm2d(num_features) if dims == 4 else nn.BatchNorm1d(num_features)

    def build_network(self) -> nn.Module:
        features = nn.Sequential(
            nn.Conv2d(self.hparams.in_channels, 6, kernel_size=5),
            self.batch_norm(6, dims=4),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            self.batch_norm(16, dims=4),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
        )
        flat = flat_features(features, in_channels=self.hparams.in_channels, input_size=self.input_size)
        head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 120),
            self.batch_norm(120, dims=2),
            nn.Sigmoid(),
            nn.Linear(120, 84),
            self.batch_norm(84, dims=2),
            nn.Sigmoid(),
            nn.Linear(84, self.hparams.num_classes),
        )
        return nn.Sequential(OrderedDict(features=features, head=head))
