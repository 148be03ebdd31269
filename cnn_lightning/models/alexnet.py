"""AlexNet (Krizhevsky et al. 2012) as in D2L §8.1, for one-channel 224×224 images, and its §8.1/§8.5 variants:
narrower, with a stem for native 28×28 images, with batch normalization."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

from torch import nn

from cnn_lightning.errors import require_choice, require_positive
from cnn_lightning.models.layers import probability
from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.scratch.shapes import flat_features
from cnn_lightning.training.classifier import Classifier

# (channels, kernel, stride, padding, max-pool after) of the five convolutions, as the book builds them.
CONVOLUTIONS = (
    (96, 11, 4, 1, True),
    (256, 5, 1, 2, True),
    (384, 3, 1, 1, False),
    (384, 3, 1, 1, False),
    (256, 3, 1, 1, True),
)
# The 11×11/4 window is sized for 224-px photographs; on a 28-px image a 3×3/1 window keeps the resolution the
# three overlapping max-pools still need (28 → 13 → 6 → 2).
SMALL_STEM = (96, 3, 1, 1, True)
HIDDEN = 4096


class AlexNet(Classifier):
    """11×11/4 convolution, 5×5, three 3×3, overlapping max-pools, then fc 4096-4096 with dropout 0.5.

    Args:
        dropout: after each hidden fc layer (the book: 0.5).
        width: multiplies every layer's width, convolutions and hidden fc layers alike (§8.1 exercise 5.1).
        stem: ``book`` (11×11 stride-4 first convolution, for 224 px) or ``small`` (3×3 stride 1, for native 28×28
            images: §8.1 exercise 5.2).
        batch_norm: batch norm after every convolution and hidden fc layer, before the ReLU (§8.5 exercise 6: with
            ``dropout`` 0 it replaces dropout).
    """

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
        structure=("dropout", "width", "stem", "batch_norm"),
    )

    def __init__(
        self,
        *,
        lr: float = 0.01,
        input_size: int = 224,
        dropout: float = 0.5,
        width: float = 1.0,
        stem: Literal["book", "small"] = "book",
        batch_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def _width(self, channels: int) -> int:
        return max(1, round(channels * self.hparams.width))

    def build_network(self) -> nn.Module:
        hp = self.hparams
        probability(hp.dropout, flag="--model.init_args.dropout")
        require_positive(hp.width, name="The width", flag="--model.init_args.width")
        stem = require_choice(hp.stem, ("book", "small"), flag="--model.init_args.stem")
        convolutions = (SMALL_STEM if stem == "small" else CONVOLUTIONS[0], *CONVOLUTIONS[1:])
        layers: list[nn.Module] = []
        in_channels = hp.in_channels
        for channels, kernel, stride, padding, pool in convolutions:
            out_channels = self._width(channels)
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=kernel, stride=stride, padding=padding))
            layers += [nn.BatchNorm2d(out_channels)] if hp.batch_norm else []
            layers.append(nn.ReLU())
            layers += [nn.MaxPool2d(kernel_size=3, stride=2)] if pool else []
            in_channels = out_channels
        features = nn.Sequential(*layers)
        flat = flat_features(features, in_channels=hp.in_channels, input_size=self.input_size)
        hidden = self._width(HIDDEN)
        head: list[nn.Module] = [nn.Flatten()]
        for in_features in (flat, hidden):
            head.append(nn.Linear(in_features, hidden))
            head += [nn.BatchNorm1d(hidden)] if hp.batch_norm else []
            head += [nn.ReLU(), nn.Dropout(p=hp.dropout)]
        head.append(nn.Linear(hidden, hp.num_classes))
        return nn.Sequential(OrderedDict(features=features, head=nn.Sequential(*head)))
