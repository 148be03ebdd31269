"""AlexNet (Krizhevsky et al. 2012) as in D2L §8.1, for one-channel 224×224 images."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.scratch.shapes import flat_features
from cnn_lightning.training.classifier import Classifier


class AlexNet(Classifier):
    """11×11/4 convolution, 5×5, three 3×3, overlapping max-pools, then fc 4096-4096 with dropout 0.5."""

    record = ModelRecord(
        title="AlexNet",
        book_section="8.1",
        config="alexnet.yaml",
        input_size=224,
        num_params=46_764_746,
        lr=0.01,
        batch_size=128,
        book_accuracy=BookAccuracy(0.879, 0.847, 0.885),
        book_examples_per_sec=4_100,
    )

    def __init__(self, *, lr: float = 0.01, input_size: int = 224, dropout: float = 0.5, **kwargs: Any) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def build_network(self) -> nn.Module:
        features = nn.Sequential(
            nn.Conv2d(self.hparams.in_channels, 96, kernel_size=11, stride=4, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        flat = flat_features(features, in_channels=self.hparams.in_channels, input_size=self.input_size)
        dropout = self.hparams.dropout
        head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, self.hparams.num_classes),
        )
        return nn.Sequential(OrderedDict(features=features, head=head))
