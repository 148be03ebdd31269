"""DenseNet (Huang et al. 2017) as in D2L §8.7, with optional memory-efficient dense layers (Pleiss et al. 2017),
and as settings the other rows of Huang et al.'s Table 1: bottleneck layers (DenseNet-B, -BC), compression and
average pooling at the end (DenseNet-121, -169, -201, -264). Convolutions keep the book's bias throughout
(torchvision's DenseNet has none), so that a variant differs from the book's network by its settings only."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from cnn_lightning.errors import ConfigError, require_choice, require_positive
from cnn_lightning.models.layers import positive_ints
from cnn_lightning.models.record import BookAccuracy, ModelRecord
from cnn_lightning.models.stems import stem
from cnn_lightning.training.classifier import Classifier


class DenseLayer(nn.Sequential):
    """The book's ``conv_block``: batch norm, ReLU, 3×3 convolution producing ``growth_rate`` channels."""

    def __init__(self, *, in_channels: int, growth_rate: int) -> None:
        super().__init__(nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, growth_rate, 3, padding=1))


class BottleneckDenseLayer(nn.Sequential):
    """Huang et al.'s DenseNet-B layer: batch norm, ReLU, 1×1 convolution to ``4 × growth_rate`` channels, then the
    book's batch norm, ReLU, 3×3 convolution producing ``growth_rate`` (torchvision's ``_DenseLayer``, ``bn_size``
    4). The 1×1 bounds the 3×3's input however many layers came before."""

    width = 4  # bottleneck channels per unit of growth

    def __init__(self, *, in_channels: int, growth_rate: int) -> None:
        bottleneck = self.width * growth_rate
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, bottleneck, kernel_size=1),
            nn.BatchNorm2d(bottleneck),
            nn.ReLU(),
            nn.Conv2d(bottleneck, growth_rate, 3, padding=1),
        )


class DenseBlock(nn.Module):
    """Dense layers, each fed the concatenation of the block input and every earlier layer's output.

    With ``memory_efficient`` each layer's concat → BN → ReLU → conv is recomputed in the backward pass
    (``torch.utils.checkpoint``) instead of storing the concatenation and its normalized copy, which makes
    feature-map memory linear rather than quadratic in depth. Outputs and gradients are unchanged, and the
    batch-norm running statistics are updated once per step, as without recomputation.
    """

    def __init__(
        self,
        *,
        num_convs: int,
        in_channels: int,
        growth_rate: int,
        memory_efficient: bool = False,
        layer: type[nn.Module] = DenseLayer,
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            *(layer(in_channels=in_channels + i * growth_rate, growth_rate=growth_rate) for i in range(num_convs))
        )
        self.memory_efficient = memory_efficient
        self.out_channels = in_channels + num_convs * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.net:
            # Tracing (TensorBoard's graph) runs the plain path: recomputation would differ between its two passes.
            if self.memory_efficient and torch.is_grad_enabled() and not torch.jit.is_tracing():
                features.append(_checkpointed(layer, features))
            else:
                features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


def _checkpointed(layer: nn.Module, features: list[torch.Tensor]) -> torch.Tensor:
    """``layer(cat(features))`` whose concatenation and normalized copy are recomputed in backward (Pleiss et al.)."""
    # The weights and statistics of this forward: the recomputation runs in backward, after any
    # ``torch.func.functional_call`` that swapped them in (e.g. FLOP counting on the meta device) has returned.
    parameters, buffers = dict(layer.named_parameters()), dict(layer.named_buffers())
    calls = 0

    def concat_layer(*tensors: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        x = torch.cat(tensors, dim=1)
        if calls == 1:
            return layer(x)
        # Recomputation: the very same module call, so autograd saves the same tensors as in the forward
        # (non-reentrant checkpoint checks that), but batch norm updates copies of its running statistics: they
        # change once per step, as without recomputation.
        state = {**parameters, **{name: buffer.clone() for name, buffer in buffers.items()}}
        return torch.func.functional_call(layer, state, (x,))

    return checkpoint(concat_layer, *features, use_reentrant=False)


class TransitionBlock(nn.Sequential):
    """Batch norm, ReLU, 1×1 convolution to ``out_channels`` and 2×2 average pooling halving the resolution."""

    def __init__(self, *, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, kernel_size=1),
            nn.AvgPool2d(kernel_size=2, stride=2),
        )


# Huang et al. 2017, Table 1 (ImageNet, growth rate 32, bottleneck layers, compression 0.5): layers per block.
TABLE_1: dict[str, tuple[int, ...]] = {
    "densenet121": (6, 12, 24, 16),
    "densenet169": (6, 12, 32, 32),
    "densenet201": (6, 12, 48, 32),
    "densenet264": (6, 12, 64, 48),
}
POOLING: dict[str, type[nn.Module]] = {"max": nn.AdaptiveMaxPool2d, "avg": nn.AdaptiveAvgPool2d}


class DenseNet(Classifier):
    """The book's DenseNet: ResNet stem, dense blocks with transitions halving channels, BN-ReLU,
    adaptive max-pool (as the book's code has it) and fc.

    Args:
        growth_rate: channels each dense layer adds.
        convs_per_block: dense layers in each block (Huang et al.'s Table 1 rows: :data:`TABLE_1`).
        memory_efficient: recompute dense layers in backward (checkpointing) to save memory; ``"auto"``: off,
            unless ``AutoMicroBatch`` finds that the whole micro-batch does not fit without it.
        bottleneck: dense layers with a 1×1 bottleneck (:class:`BottleneckDenseLayer`, DenseNet-B; with the book's
            compression 0.5 DenseNet-BC, as DenseNet-121 is; §8.7 exercise 4).
        compression: the share of channels a transition keeps (Huang et al.'s θ; the book: 0.5, halving).
        final_pooling: the global pooling before the fc layer, ``max`` (the book's code) or ``avg`` (Huang et al.).
    """

    record = ModelRecord(
        title="DenseNet (growth 32, 4 blocks of 4)",
        book_section="8.7",
        config="densenet.yaml",
        input_size=96,
        num_params=758_226,
        lr=0.1,
        batch_size=256,
        book_accuracy=BookAccuracy(median=0.890, low=0.406, high=0.919),
        book_examples_per_sec=5_500,
        structure=("growth_rate", "convs_per_block", "bottleneck", "compression", "final_pooling"),
    )

    def __init__(
        self,
        *,
        lr: float = 0.1,
        input_size: int = 96,
        growth_rate: int = 32,
        convs_per_block: tuple[int, ...] = (4, 4, 4, 4),
        memory_efficient: bool | Literal["auto"] = False,
        bottleneck: bool = False,
        compression: float = 0.5,
        final_pooling: Literal["max", "avg"] = "max",
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, input_size=input_size, **kwargs)

    @property
    def memory_efficient(self) -> bool:
        """Whether the dense layers are recomputed in backward now."""
        return any(block.memory_efficient for block in self.net.modules() if isinstance(block, DenseBlock))

    def set_memory_efficient(self, enabled: bool) -> None:
        """Turn recomputation of the dense layers in backward on or off (the weights are untouched)."""
        for block in self.net.modules():
            if isinstance(block, DenseBlock):
                block.memory_efficient = enabled

    def build_network(self) -> nn.Module:
        hp = self.hparams
        positive_ints(hp.convs_per_block, flag="--model.init_args.convs_per_block")
        require_positive(hp.growth_rate, name="The growth rate", flag="--model.init_args.growth_rate")
        if not 0 < hp.compression <= 1:
            raise ConfigError(
                f"--model.init_args.compression is the share of channels a transition keeps, in (0, 1], got "
                f"{hp.compression}: e.g. 0.5 (the book, DenseNet-C) or 1 (none)."
            )
        pool = POOLING[require_choice(hp.final_pooling, ("max", "avg"), flag="--model.init_args.final_pooling")]
        stages: OrderedDict[str, nn.Module] = OrderedDict(stem=stem(hp.in_channels))
        channels = 64
        for index, num_convs in enumerate(hp.convs_per_block, start=1):
            block = DenseBlock(
                num_convs=num_convs,
                in_channels=channels,
                growth_rate=hp.growth_rate,
                memory_efficient=hp.memory_efficient is True,
                layer=BottleneckDenseLayer if hp.bottleneck else DenseLayer,
            )
            stages[f"block{index}"] = block
            channels = block.out_channels
            if index != len(hp.convs_per_block):
                kept = int(channels * hp.compression)  # Huang et al.'s floor(θm); the book's channels // 2
                stages[f"transition{index}"] = TransitionBlock(in_channels=channels, out_channels=kept)
                channels = kept
        stages["head"] = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            pool((1, 1)),
            nn.Flatten(),
            nn.Linear(channels, hp.num_classes),
        )
        return nn.Sequential(stages)
