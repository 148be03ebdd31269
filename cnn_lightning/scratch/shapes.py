"""Shapes and FLOPs of a network computed on the meta device: nothing is allocated or computed."""

from __future__ import annotations

import torch
from lightning.fabric.utilities.throughput import measure_flops
from torch import nn


def meta_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Stand-ins on the meta device for ``module``'s parameters and buffers, for ``torch.func.functional_call``:
    same shapes and ``requires_grad``, detached leaves, so a pass computes nothing and never touches the real ones."""
    return {
        name: torch.empty_like(t, device="meta").requires_grad_(t.requires_grad)
        for name, t in [*module.named_parameters(), *module.named_buffers()]
    }


def output_shape(module: nn.Module, input_shape: tuple[int, ...]) -> torch.Size:
    """Shape ``module`` produces for ``input_shape``, computed on the meta device (no memory, no FLOPs)."""
    with torch.no_grad():
        return torch.func.functional_call(module, meta_state(module), (torch.empty(input_shape, device="meta"),)).shape


def flat_features(features: nn.Module, *, in_channels: int, input_size: int) -> int:
    """Number of features ``features`` hands to the classifier head for one ``input_size`` image."""
    return output_shape(features, (1, in_channels, input_size, input_size)).numel()


def training_flops(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward and backward pass over a batch of ``input_shape``, counted by Lightning's
    ``measure_flops`` (``torch.utils.flop_counter``) on the meta device: nothing is computed or allocated."""
    meta = meta_state(module)
    images = torch.empty(input_shape, device="meta")
    return measure_flops(module, lambda: torch.func.functional_call(module, meta, (images,)), torch.Tensor.sum)
