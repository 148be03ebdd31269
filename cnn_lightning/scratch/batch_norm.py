"""Batch normalization from scratch, as D2L §8.5 writes it (Ioffe & Szegedy 2015): the function and the layer."""

from __future__ import annotations

import torch
from torch import nn


def batch_norm(
    X: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    moving_mean: torch.Tensor,
    moving_var: torch.Tensor,
    eps: float,
    momentum: float,
    *,
    training: bool | None = None,
    correction: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch normalization (Ioffe & Szegedy 2015) as the book writes it in D2L §8.5.3.

    ``X`` is ``(N, C)`` after a fully connected layer or ``(N, C, H, W)`` after a convolution; statistics are
    per feature, over the batch (and the spatial positions). Training normalizes with the batch mean and the
    *biased* batch variance and updates the moving averages as the book and PyTorch do,
    ``moving = (1 - momentum) * moving + momentum * batch_stat``; prediction normalizes with the moving averages.

    ``correction`` is the Bessel correction of the variance that goes into ``moving_var``: ``nn.BatchNorm``
    stores the unbiased variance (``correction=1``, the default here so the running statistics match PyTorch's
    exactly) while the book stores the biased one it normalizes with (``correction=0``).

    Args:
        training: use batch statistics; None decides as the book does, by ``torch.is_grad_enabled()``.

    Returns:
        The output and the new moving mean and variance (detached), as in the book.
    """
    if training is None:
        training = torch.is_grad_enabled()
    if not training:
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        if X.dim() not in (2, 4):
            raise ValueError(f"batch_norm takes (N, C) or (N, C, H, W) inputs, not {tuple(X.shape)}")
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        mean = X.mean(dim=dims, keepdim=True)
        var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
        X_hat = (X - mean) / torch.sqrt(var + eps)
        count = X.numel() // X.shape[1]
        # Rescales the biased variance to the stored one; a single value per feature (which nn.BatchNorm refuses
        # to train on) has no unbiased variance, so the biased one is kept rather than a division by zero.
        stored_var = var * count / max(count - correction, 1)
        moving_mean = (1.0 - momentum) * moving_mean + momentum * mean
        moving_var = (1.0 - momentum) * moving_var + momentum * stored_var
    return gamma * X_hat + beta, moving_mean.detach(), moving_var.detach()


class BatchNorm(nn.Module):
    """The book's ``BatchNorm`` layer (D2L §8.5.3), a drop-in for ``nn.BatchNorm1d`` / ``nn.BatchNorm2d``.

    Scale ``gamma`` and shift ``beta`` are learned; ``moving_mean`` and ``moving_var`` are buffers, so they move
    with ``.to()`` and are saved in checkpoints (the book keeps plain attributes). The module's ``training`` flag,
    not the grad mode, picks batch or moving statistics. With the default ``correction=1`` outputs and running
    statistics equal ``nn.BatchNorm{1,2}d``'s in both modes.

    Args:
        num_features: channels (after a convolution) or features (after a linear layer).
        num_dims: 2 for ``(N, C)`` inputs, 4 for ``(N, C, H, W)``.
        eps: added to the variance for stability.
        momentum: weight of the batch statistic in the moving average.
        correction: Bessel correction of the stored variance (1: PyTorch, 0: the book).
    """

    def __init__(
        self, num_features: int, num_dims: int, *, eps: float = 1e-5, momentum: float = 0.1, correction: int = 1
    ) -> None:
        super().__init__()
        if num_dims not in (2, 4):
            raise ValueError(f"num_dims must be 2 or 4, not {num_dims}")
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))
        self.eps, self.momentum, self.correction = eps, momentum, correction

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y, moving_mean, moving_var = batch_norm(
            X,
            self.gamma,
            self.beta,
            self.moving_mean,
            self.moving_var,
            eps=self.eps,
            momentum=self.momentum,
            training=self.training,
            correction=self.correction,
        )
        if self.training:
            # In place, so the buffers stay the registered tensors (functional_call, DDP and the meta-device
            # shape probe all rely on that).
            with torch.no_grad():
                self.moving_mean.copy_(moving_mean)
                self.moving_var.copy_(moving_var)
        return Y

    def extra_repr(self) -> str:
        return f"{self.gamma.shape[1]}, num_dims={self.gamma.dim()}, eps={self.eps}, momentum={self.momentum}"
