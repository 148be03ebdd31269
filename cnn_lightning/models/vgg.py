"""VGG (Simonyan & Zisserman 2014) as in D2L §8.2: VGG-11 built from VGG blocks."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.scratch.shapes import flat_features
from cnn_lightning.training.classifier import Classifier

# Simonyan & Zisserman's Table 1, configurations A, D and E: (convolutions, channels) per block. VGG-16 and VGG-19
# are ``--model.init_args.arch`` with these values (configs/exercises/8.2-3-vgg16.yaml, -vgg19.yaml).
VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
VGG16 = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
VGG19 = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))


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
        arch: ``(num_convs, out_channels)`` per block: :data:`VGG11` (the book), :data:`VGG16`, :data:`VGG19`.
        channel_ratio: divisor of each block's channels.
        dropout: dropout after each hidden fc layer.
    """

    record = ModelRecord(
        title="VGG-11, channels divided by 4",
        book_section="8.2",
        config="vgg.yaml",
        input_size=224,
        num_params=43_093_322,
        lr=0.05,
        batch_size=128,
        book_accuracy=BookAccuracy(median=0.918, low=0.900, high=0.924),
        book_examples_per_sec=2_500,
        structure=("arch", "channel_ratio", "dropout"),
    )

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
        blocks, in_channels = OrderedDict(), hp.in_channels
        for index, (num_convs, channels) in enumerate(hp.arch, start=1):
            out_channels = channels // hp.channel_ratio
            blocks[f"block{index}"] = VGGBlock(num_convs=num_convs, in_channels=in_channels, out_channels=out_channels)
            in_channels = out_channels
        features = nn.Sequential(blocks)
        flat = flat_features(features, in_channels=hp.in_channels, input_size=self.input_size)
        head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 4096),
            nn.ReLU(),
            nn.Dropout(hp.dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(hp.dropout),
            nn.Linear(4096, hp.num_classes),
        )
        return nn.Sequential(OrderedDict(features=features, head=head))
