"""Network in Network (Lin et al. 2013) as in D2L §8.3, and the variants of its exercises: more or fewer 1×1
convolutions, 3×3 instead of 1×1, an fc head instead of global average pooling, deeper stages."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

from torch import nn

from cnn_lightning.errors import ConfigError, require_choice, require_positive
from cnn_lightning.models.layers import positive_ints, probability
from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.scratch.shapes import flat_features
from cnn_lightning.training.classifier import Classifier

# (channels, kernel, stride, padding) of the first block of each stage, each stage ending in a 3×3/2 max-pool.
STAGES = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))


class NiNBlock(nn.Sequential):
    """A convolution followed by ``pointwise_convs`` (the book: two) 1×1 convolutions — per-pixel fully connected
    layers — each with ReLU; ``pointwise_kernel_size`` 3 makes them 3×3 (padding 1) instead (§8.3 exercise 2)."""

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        padding: int,
        pointwise_convs: int = 2,
        pointwise_kernel_size: int = 1,
    ) -> None:
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.ReLU()]
        for _ in range(pointwise_convs):
            pad = pointwise_kernel_size // 2
            layers += [nn.Conv2d(out_channels, out_channels, kernel_size=pointwise_kernel_size, padding=pad), nn.ReLU()]
        super().__init__(*layers)


class NiN(Classifier):
    """Four NiN blocks (11/4, 5, 3, 3) with max-pools and dropout; global average pooling replaces the fc head.

    Args:
        dropout: before the last NiN block (the book: 0.5).
        pointwise_convs: 1×1 convolutions in each block (the book: 2; §8.3 exercise 1 tries 1 and 3).
        pointwise_kernel_size: their window, 1 (the book) or 3 (§8.3 exercise 2).
        head: ``gap``, global average pooling of the last block's one channel per class (the book), or ``fc``,
            a fully connected layer from all of that block's outputs to the classes instead (§8.3 exercise 3).
        blocks_per_stage: NiN blocks before each of the three max-pools (the book: one each); the extra blocks
            are 3×3 at the stage's width, the way VGG-11, -16 and -19 differ (§8.3 exercise 6).
    """

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
        structure=("dropout", "pointwise_convs", "pointwise_kernel_size", "head", "blocks_per_stage"),
    )

    def __init__(
        self,
        *,
        lr: float = 0.1,
        input_size: int = 224,
        dropout: float = 0.5,
        pointwise_convs: int = 2,
        pointwise_kernel_size: Literal[1, 3] = 1,
        head: Literal["gap", "fc"] = "gap",
        blocks_per_stage: tuple[int, int, int] = (1, 1, 1),
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def _block(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> NiNBlock:
        hp = self.hparams
        return NiNBlock(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            pointwise_convs=hp.pointwise_convs,
            pointwise_kernel_size=hp.pointwise_kernel_size,
        )

    def build_network(self) -> nn.Module:
        hp = self.hparams
        probability(hp.dropout, flag="--model.init_args.dropout")
        require_positive(
            hp.pointwise_convs, name="The 1×1 count", flag="--model.init_args.pointwise_convs", allow_zero=True
        )
        require_choice(hp.pointwise_kernel_size, (1, 3), flag="--model.init_args.pointwise_kernel_size")
        positive_ints(hp.blocks_per_stage, flag="--model.init_args.blocks_per_stage")
        if len(hp.blocks_per_stage) != len(STAGES):
            raise ConfigError(
                f"--model.init_args.blocks_per_stage takes one count per stage ({len(STAGES)}), got "
                f"{list(hp.blocks_per_stage)}: e.g. [1, 1, 1] (the book) or [2, 2, 3]."
            )
        layers: list[nn.Module] = []
        in_channels = hp.in_channels
        for (channels, kernel, stride, padding), blocks in zip(STAGES, hp.blocks_per_stage, strict=True):
            layers.append(self._block(in_channels, channels, kernel, stride, padding))
            layers += [self._block(channels, channels, 3, 1, 1) for _ in range(blocks - 1)]
            layers.append(nn.MaxPool2d(3, stride=2))
            in_channels = channels
        features = nn.Sequential(*layers)
        # The last NiN block has one channel per class; global average pooling turns them into the scores.
        head: list[nn.Module] = [nn.Dropout(hp.dropout), self._block(in_channels, hp.num_classes, 3, 1, 1)]
        if require_choice(hp.head, ("gap", "fc"), flag="--model.init_args.head") == "gap":
            head += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()]
        else:
            scores = flat_features(
                nn.Sequential(features, *head), in_channels=hp.in_channels, input_size=self.input_size
            )
            head += [nn.Flatten(), nn.Linear(scores, hp.num_classes)]
        return nn.Sequential(OrderedDict(features=features, head=nn.Sequential(*head)))
