"""GoogLeNet (Szegedy et al. 2015) as in D2L §8.4: five stages, nine Inception blocks; and the variants of §8.4's
exercises, each a setting: batch norm (Ioffe & Szegedy 2015), Inception-v3's factorized 5×5 (Szegedy et al. 2016),
residual Inception blocks (Szegedy et al. 2017) and a stem for native 28×28 images."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lightning.errors import require_choice
from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.training.classifier import Classifier

#: Builds a convolution unit: ``conv(in_channels, out_channels, kernel_size, stride=1, padding=0)``. The blocks
#: apply the ReLU, so a unit is ``nn.Conv2d`` (the book) or :class:`ConvBN`.
ConvUnit = Callable[..., nn.Module]


class ConvBN(nn.Sequential):
    """A convolution without bias (batch norm's shift replaces it) followed by batch norm: torchvision's
    ``BasicConv2d`` of its GoogLeNet and Inception-v3, less the ReLU that the blocks here apply themselves."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(out_channels),
        )


class Inception(nn.Module):
    """Four parallel paths concatenated on channels: 1×1; 1×1→3×3; 1×1→5×5; 3×3 max-pool→1×1.

    Args:
        in_channels: input channels.
        c1: output channels of path 1.
        c2: (reduction, output) channels of path 2.
        c3: (reduction, output) channels of path 3.
        c4: output channels of path 4.
        conv: the convolution unit (``nn.Conv2d`` as in the book, or :class:`ConvBN`).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        c1: int,
        c2: tuple[int, int],
        c3: tuple[int, int],
        c4: int,
        conv: ConvUnit = nn.Conv2d,
    ) -> None:
        super().__init__()
        self.p1_1 = conv(in_channels, c1, kernel_size=1)
        self.p2_1 = conv(in_channels, c2[0], kernel_size=1)
        self.p2_2 = conv(c2[0], c2[1], kernel_size=3, padding=1)
        self.p3_1 = conv(in_channels, c3[0], kernel_size=1)
        self.p3_2 = self.wide_path(c3, conv)
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = conv(in_channels, c4, kernel_size=1)
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def wide_path(self, c3: tuple[int, int], conv: ConvUnit) -> nn.Module:
        """Path 3 after its 1×1 reduction: one 5×5 convolution."""
        return conv(c3[0], c3[1], kernel_size=5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        return torch.cat((p1, p2, p3, p4), dim=1)


class InceptionV3(Inception):
    """The Inception block with path 3's 5×5 convolution factorized into two 3×3 (Szegedy et al. 2016, Figure 5,
    torchvision's ``InceptionA``): the same receptive field with 18/25 of the weights and a ReLU between."""

    def wide_path(self, c3: tuple[int, int], conv: ConvUnit) -> nn.Module:
        return nn.Sequential(
            conv(c3[0], c3[1], kernel_size=3, padding=1), nn.ReLU(), conv(c3[1], c3[1], kernel_size=3, padding=1)
        )


class ResidualInception(nn.Module):
    """An Inception block with a shortcut around it, ``relu(block(x) + shortcut(x))`` (Szegedy et al. 2017,
    Inception-ResNet): the identity where the widths agree, else a 1×1 convolution, as in ResNet's blocks.

    Inception-ResNet also ends each branch in a linear 1×1 convolution and scales it; here the block keeps its own
    output, so that the variant differs from the book's by the shortcut alone.
    """

    def __init__(self, block: Inception, *, in_channels: int, conv: ConvUnit = nn.Conv2d) -> None:
        super().__init__()
        self.block = block
        out = block.out_channels
        self.shortcut = nn.Identity() if in_channels == out else conv(in_channels, out, kernel_size=1)
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.block(x) + self.shortcut(x))


# The book's nine Inception blocks of stages b3, b4 and b5: (in_channels, c1, c2, c3, c4).
STAGES: dict[str, tuple[tuple[int, int, tuple[int, int], tuple[int, int], int], ...]] = {
    "b3": ((192, 64, (96, 128), (16, 32), 32), (256, 128, (128, 192), (32, 96), 64)),
    "b4": (
        (480, 192, (96, 208), (16, 48), 64),
        (512, 160, (112, 224), (24, 64), 64),
        (512, 128, (128, 256), (24, 64), 64),
        (512, 112, (144, 288), (32, 64), 64),
        (528, 256, (160, 320), (32, 128), 128),
    ),
    "b5": ((832, 256, (160, 320), (32, 128), 128), (832, 384, (192, 384), (48, 128), 128)),
}
BLOCKS: dict[str, type[Inception]] = {"v1": Inception, "v3": InceptionV3}


def _pool() -> nn.Module:
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class GoogLeNet(Classifier):
    """The book's GoogLeNet for 96×96 images: 7×7 stem, 1×1/3×3 stage, Inception stages 3, 4, 5, fc 1024→10.

    Args:
        batch_norm: every convolution followed by batch norm, and without bias (§8.4 exercise 1.1).
        inception: the block, ``v1`` (:class:`Inception`, the book) or ``v3`` (:class:`InceptionV3`, 5×5
            factorized: §8.4 exercise 1.2).
        residual: wrap every Inception block in a shortcut (:class:`ResidualInception`: §8.4 exercise 1.4).
        stem: ``book`` (7×7 stride-2 convolution and a max-pool, for 96 px) or ``small`` (one 3×3 stride-1
            convolution, for native 28×28 images: 28 → 14 → 7 → 4 → global pool; §8.4 exercise 3).
    """

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
        structure=("batch_norm", "inception", "residual", "stem"),
    )

    def __init__(
        self,
        *,
        lr: float = 0.1,
        input_size: int = 96,
        batch_norm: bool = False,
        inception: Literal["v1", "v3"] = "v1",
        residual: bool = False,
        stem: Literal["book", "small"] = "book",
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    def _inception(self, spec: tuple[Any, ...], conv: ConvUnit) -> nn.Module:
        in_channels, c1, c2, c3, c4 = spec
        kind = BLOCKS[require_choice(self.hparams.inception, tuple(BLOCKS), flag="--model.init_args.inception")]
        block = kind(in_channels=in_channels, c1=c1, c2=c2, c3=c3, c4=c4, conv=conv)
        return ResidualInception(block, in_channels=in_channels, conv=conv) if self.hparams.residual else block

    def build_network(self) -> nn.Module:
        hp = self.hparams
        conv: ConvUnit = ConvBN if hp.batch_norm else nn.Conv2d
        if require_choice(hp.stem, ("book", "small"), flag="--model.init_args.stem") == "small":
            b1 = nn.Sequential(conv(hp.in_channels, 64, kernel_size=3, padding=1), nn.ReLU())
        else:
            b1 = nn.Sequential(conv(hp.in_channels, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(), _pool())
        b2 = nn.Sequential(
            conv(64, 64, kernel_size=1),
            nn.ReLU(),
            conv(64, 192, kernel_size=3, padding=1),
            nn.ReLU(),
            _pool(),
        )
        b3 = nn.Sequential(*(self._inception(spec, conv) for spec in STAGES["b3"]), _pool())
        b4 = nn.Sequential(*(self._inception(spec, conv) for spec in STAGES["b4"]), _pool())
        b5 = nn.Sequential(
            *(self._inception(spec, conv) for spec in STAGES["b5"]), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()
        )
        head = nn.Linear(1024, hp.num_classes)
        return nn.Sequential(OrderedDict(b1=b1, b2=b2, b3=b3, b4=b4, b5=b5, head=head))
