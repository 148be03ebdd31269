"""ResNet (He et al. 2016) as in D2L §8.6: the book's ResNet-18 and, as settings, the other rows of He et al.'s
Table 1 (ResNet-34, -50, -101, -152), bottleneck blocks and pre-activation blocks (He et al. 2016b).

Every block keeps the book's conventions, so that a variant differs from the book's network by what its setting
names only: convolutions with a bias, batch norm after each, and a projection shortcut that is a bare 1×1
convolution (torchvision's blocks have no convolution bias and batch-normalize the projection).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lightning.errors import require_choice
from cnn_lightning.models.layers import positive_ints
from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.models.stems import stem
from cnn_lightning.training.classifier import Classifier


class Residual(nn.Module):
    """Two 3×3 conv-BN layers plus the identity, or a 1×1 convolution when shape or stride changes."""

    expansion = 1  # output channels per stage width

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


class Bottleneck(nn.Module):
    """1×1 reduction to a quarter of ``out_channels``, 3×3, 1×1 expansion, each with batch norm, plus the shortcut
    (He et al. 2016, Figure 5 right; §8.6 exercise 3). The stride sits on the 3×3 convolution, as in torchvision's
    ``Bottleneck`` ("ResNet v1.5"; the paper strides the first 1×1): the same parameters, less information lost."""

    expansion = 4

    def __init__(self, *, in_channels: int, out_channels: int, use_1x1conv: bool = False, stride: int = 1) -> None:
        super().__init__()
        width = out_channels // self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm2d(width), nn.BatchNorm2d(width), nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride) if use_1x1conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class PreActResidual(nn.Module):
    """The basic block with full pre-activation, BN → ReLU → conv twice, and nothing after the addition (He et al.
    2016b, "Identity Mappings in Deep Residual Networks", Figure 4e; §8.6 exercise 4). A projection shortcut takes
    the pre-activated input, as the paper's code does, the identity the block's input itself."""

    expansion = 1

    def __init__(self, *, in_channels: int, out_channels: int, use_1x1conv: bool = False, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride) if use_1x1conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(y)
        y = self.conv2(F.relu(self.bn2(self.conv1(y))))
        return y + shortcut


BLOCKS: dict[str, type[nn.Module]] = {"basic": Residual, "bottleneck": Bottleneck, "preact": PreActResidual}
# He et al. 2016, Table 1: (block, blocks per stage) of each depth; the book's ResNet-18 is the first row.
TABLE_1: dict[str, tuple[str, tuple[int, ...]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}


def resnet_stage(
    *,
    in_channels: int,
    out_channels: int,
    num_residuals: int,
    first_stage: bool = False,
    block: type[nn.Module] = Residual,
) -> nn.Sequential:
    """Residual blocks of one resolution; all but the first stage halve it in block one. Block one projects its
    input with a 1×1 convolution wherever the width or the resolution changes."""
    blocks = []
    for index in range(num_residuals):
        if index == 0:
            stride = 1 if first_stage else 2
            project = stride != 1 or in_channels != out_channels
            blocks.append(block(in_channels=in_channels, out_channels=out_channels, use_1x1conv=project, stride=stride))
        else:
            blocks.append(block(in_channels=out_channels, out_channels=out_channels))
    return nn.Sequential(*blocks)


class ResNet(Classifier):
    """The book's ResNet-18: stem, four stages of two residual blocks (64, 128, 256, 512), global pool, fc.

    Args:
        block: ``basic`` (:class:`Residual`, the book), ``bottleneck`` (:class:`Bottleneck`, four times wider
            stages: ResNet-50 and deeper) or ``preact`` (:class:`PreActResidual`, with a batch norm and ReLU
            before the pooling, since its blocks end on an addition).
        blocks_per_stage: residual blocks in each stage (the book: [2, 2, 2, 2]); stage ``i`` has width
            64·2^i (times 4 for bottlenecks). ResNet-34 and -50 are [3, 4, 6, 3] (He et al. Table 1,
            :data:`TABLE_1`; §8.6 exercise 2).
    """

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
        structure=("block", "blocks_per_stage"),
    )

    def __init__(
        self,
        *,
        lr: float = 0.05,
        input_size: int = 96,
        block: Literal["basic", "bottleneck", "preact"] = "basic",
        blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2),
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def build_network(self) -> nn.Module:
        hp = self.hparams
        kind = BLOCKS[require_choice(hp.block, tuple(BLOCKS), flag="--model.init_args.block")]
        positive_ints(hp.blocks_per_stage, flag="--model.init_args.blocks_per_stage")
        stages: OrderedDict[str, nn.Module] = OrderedDict(b1=stem(hp.in_channels))
        channels = 64
        for index, num_residuals in enumerate(hp.blocks_per_stage):
            out_channels = 64 * 2**index * kind.expansion
            stages[f"b{index + 2}"] = resnet_stage(
                in_channels=channels,
                out_channels=out_channels,
                num_residuals=num_residuals,
                first_stage=index == 0,
                block=kind,
            )
            channels = out_channels
        # Built after the stages, in the book's order, so that a seed gives the same initial weights as before.
        last: list[nn.Module] = [nn.BatchNorm2d(channels), nn.ReLU()] if kind is PreActResidual else []
        pool = [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(channels, hp.num_classes)]
        stages["head"] = nn.Sequential(*last, *pool)
        return nn.Sequential(stages)
