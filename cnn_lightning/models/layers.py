"""Layers chosen by name in the networks' settings: activations, pooling, the trimmed convolution, and the checks on
structure settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lightning.errors import ConfigError, require_choice

Activation = Literal["sigmoid", "relu", "tanh", "leaky_relu", "gelu", "silu"]
Pooling = Literal["avg", "max"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}
POOLING: dict[str, type[nn.Module]] = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def activation(name: str, *, flag: str) -> nn.Module:
    """A fresh activation layer called ``name`` (``flag`` sets it, for the message when the name is unknown)."""
    return ACTIVATIONS[require_choice(name, ACTIVATIONS, flag=flag)]()


def pooling(name: str, *, flag: str, kernel_size: int = 2, stride: int = 2) -> nn.Module:
    """A fresh ``avg`` or ``max`` pooling layer."""
    return POOLING[require_choice(name, POOLING, flag=flag)](kernel_size=kernel_size, stride=stride)


class TrimmedConv2d(nn.Conv2d):
    """A stride-1 convolution without its output's last row and column, which a 2×2 stride-2 pooling (floor mode)
    after an odd-sided map never reads: padded one less at the bottom and right (cropped by one where ``padding``
    is 0). The same parameters as ``nn.Conv2d`` and, at every position it computes, the same outputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = self.padding
        x = F.pad(x, (pad_w, pad_w - 1, pad_h, pad_h - 1))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, trimmed=last row and column"


def positive_ints(values: Sequence[int], *, flag: str, allow_empty: bool = False, allow_zero: bool = False) -> None:
    """Refuse an empty list (unless allowed) or a value below 1 (0 allowed with ``allow_zero``) in a list setting."""
    least = 0 if allow_zero else 1
    if (not values and not allow_empty) or any(int(value) < least for value in values):
        raise ConfigError(
            f"{flag} takes a list of whole numbers of at least {least}, got {list(values)}. Set it to e.g. "
            f"[{', '.join(str(max(int(v), least)) for v in values) or '1'}]."
        )


def same_length(flags: dict[str, Sequence[object]]) -> None:
    """Refuse list settings that describe the same layers but differ in length."""
    lengths = {flag: len(values) for flag, values in flags.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{flag} has {n}" for flag, n in lengths.items())
        raise ConfigError(f"These settings give one value per layer and must be equally long: {listed}.")


def probability(value: float, *, flag: str) -> None:
    """Refuse a dropout probability outside [0, 1)."""
    if not 0 <= value < 1:
        raise ConfigError(f"{flag} must be in [0, 1), got {value}. Set it to e.g. 0.5, or 0 for no dropout.")
