"""The kinds of batch normalization (Ioffe & Szegedy 2015) D2L §8.5's exercises ask about: full, centring only,
scaling only, and fixed γ/β."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from cnn_lightning.errors import ConfigError, require_choice
from cnn_lightning.scratch.batch_norm import BatchNorm

BatchNormKind = Literal["full", "center", "scale", "fixed"]
KINDS: tuple[str, ...] = ("full", "center", "scale", "fixed")


class LiteBatchNorm(nn.Module):
    """Half of batch normalization (D2L §8.5, exercise 4): ``center`` subtracts the batch mean and adds a learned
    shift β (no division); ``scale`` divides by the batch standard deviation and multiplies by a learned γ (no
    subtraction, so the mean is rescaled, not removed).

    Statistics are taken per channel over the batch (and positions) in training and kept as running averages for
    evaluation, as ``nn.BatchNorm`` keeps them (momentum 0.1, unbiased variance stored); only the statistic the
    kind uses is kept.

    Args:
        num_features: channels (after a convolution) or features (after a linear layer).
        mode: ``center`` or ``scale``.
        eps: added to the variance for stability.
        momentum: weight of the batch statistic in the running average.
    """

    def __init__(
        self, num_features: int, *, mode: Literal["center", "scale"], eps: float = 1e-5, momentum: float = 0.1
    ) -> None:
        super().__init__()
        self.mode, self.eps, self.momentum = require_choice(mode, ("center", "scale"), flag="mode"), eps, momentum
        if mode == "center":
            self.bias = nn.Parameter(torch.zeros(num_features))
            self.register_buffer("running_mean", torch.zeros(num_features))
        else:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.dim())]
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if self.mode == "center":
            mean = x.mean(dim=dims) if self.training else self.running_mean
            if self.training:
                with torch.no_grad():
                    self.running_mean.lerp_(mean.detach(), self.momentum)
            return x - mean.view(shape) + self.bias.view(shape)
        var = x.var(dim=dims, correction=0) if self.training else self.running_var
        if self.training:
            count = x.numel() // x.shape[1]
            with torch.no_grad():
                self.running_var.lerp_(var.detach() * count / max(count - 1, 1), self.momentum)
        return x / torch.sqrt(var.view(shape) + self.eps) * self.weight.view(shape)

    def extra_repr(self) -> str:
        features = (self.bias if self.mode == "center" else self.weight).shape[0]
        return f"{features}, mode={self.mode}, eps={self.eps}, momentum={self.momentum}"


def batch_norm_layer(kind: str, num_features: int, *, dims: int, scratch: bool = False) -> nn.Module:
    """A batch-norm layer of ``kind`` for ``(N, C)`` (``dims`` 2) or ``(N, C, H, W)`` (``dims`` 4) inputs.

    ``full`` is ``nn.BatchNorm1d/2d`` (or the book's from-scratch ``BatchNorm`` with ``scratch``), ``fixed`` the same
    without learned γ and β (they stay 1 and 0: §8.5 exercise 5), ``center`` and ``scale`` a :class:`LiteBatchNorm`.
    """
    require_choice(kind, KINDS, flag="--model.init_args.batch_norm")
    if scratch and kind != "full":
        raise ConfigError(
            f"scratch_batch_norm builds the book's full batch norm only, not {kind!r}: set "
            "--model.init_args.scratch_batch_norm false or --model.init_args.batch_norm full."
        )
    if scratch:
        return BatchNorm(num_features, num_dims=dims)
    if kind in ("center", "scale"):
        return LiteBatchNorm(num_features, mode=kind)  # type: ignore[arg-type]
    norm = nn.BatchNorm2d if dims == 4 else nn.BatchNorm1d
    return norm(num_features, affine=kind == "full")
