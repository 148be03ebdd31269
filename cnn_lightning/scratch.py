"""The book's from-scratch building blocks: cross-correlation, convolution, pooling and batch normalization.

Each operator is the one D2L builds by hand before switching to ``torch.nn`` (§7.2 cross-correlation and the
learnable ``Conv2D``, §7.3 padding and stride with the output-size rule, §7.4 multiple channels and the cost of a
convolution, §7.5 pooling, §8.5 batch normalization). They are written for reading, not speed; the tests check
each against its PyTorch counterpart.

Conventions: padding arguments of the operators are *per side*, as in ``nn.Conv2d(padding=...)``. The book's
output-size formula counts the *total* padding instead; :func:`conv_output_size` keeps the book's form and
:func:`conv_output_size_symmetric` takes PyTorch's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

IntPair = int | tuple[int, int]


def _pair(value: IntPair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _windows(
    X: torch.Tensor, kernel_size: tuple[int, int], stride: tuple[int, int]
) -> tuple[tuple[int, int], list[tuple[int, int, torch.Tensor]]]:
    """Output size and, for each kernel offset (a, b), the strided slice of ``X`` that offset multiplies."""
    (k_h, k_w), (s_h, s_w) = kernel_size, stride
    m_h, m_w = (X.shape[-2] - k_h) // s_h + 1, (X.shape[-1] - k_w) // s_w + 1
    if m_h < 1 or m_w < 1:
        raise ValueError(f"a {k_h}x{k_w} window does not fit a {X.shape[-2]}x{X.shape[-1]} (padded) input")
    return (m_h, m_w), [
        (a, b, X[..., a : a + s_h * (m_h - 1) + 1 : s_h, b : b + s_w * (m_w - 1) + 1 : s_w])
        for a in range(k_h)
        for b in range(k_w)
    ]


def corr2d(X: torch.Tensor, K: torch.Tensor, *, stride: IntPair = 1, padding: IntPair = 0) -> torch.Tensor:
    """2-D cross-correlation of ``X`` (``..., h, w``) with kernel ``K`` (``k_h, k_w``), D2L §7.2 and §7.3.

    The book loops over the output positions; summing ``K[a, b]`` times the slice of ``X`` each kernel offset
    touches gives the same sums with ``k_h·k_w`` instead of ``m_h·m_w`` Python iterations, and works on any
    leading batch dimensions. ``padding`` adds that many zero rows/columns on *each* side.
    """
    p_h, p_w = _pair(padding)
    X = F.pad(X, (p_w, p_w, p_h, p_h))
    _, windows = _windows(X, tuple(K.shape), _pair(stride))
    return sum(K[a, b] * window for a, b, window in windows)


def corr2d_multi_in(X: torch.Tensor, K: torch.Tensor, *, stride: IntPair = 1, padding: IntPair = 0) -> torch.Tensor:
    """Cross-correlate ``X`` (``..., c_i, h, w``) with ``K`` (``c_i, k_h, k_w``) and sum over channels (§7.4.1)."""
    return sum(corr2d(X[..., c, :, :], K[c], stride=stride, padding=padding) for c in range(K.shape[0]))


def corr2d_multi_in_out(X: torch.Tensor, K: torch.Tensor, *, stride: IntPair = 1, padding: IntPair = 0) -> torch.Tensor:
    """One :func:`corr2d_multi_in` per output channel of ``K`` (``c_o, c_i, k_h, k_w``), stacked (§7.4.2)."""
    return torch.stack([corr2d_multi_in(X, k, stride=stride, padding=padding) for k in K], dim=-3)


class Conv2D(nn.Module):
    """The book's learnable convolution (D2L §7.2.3): a kernel and a bias, ``corr2d(x, weight) + bias``.

    Without channels it is exactly the book's layer: a ``kernel_size`` weight drawn from U(0, 1), a scalar bias
    and 2-D inputs (``h, w``, or with leading batch dimensions). With ``in_channels`` and ``out_channels`` it is
    the multi-channel layer of §7.4 on ``(N, c_i, h, w)`` inputs, initialised like ``nn.Conv2d``.

    Args:
        kernel_size: window height and width.
        in_channels: input channels, or None for the single-channel layer of §7.2.
        out_channels: output channels, or None for the single-channel layer of §7.2.
        stride: step between windows.
        padding: zeros added on each side.
        bias: learn an additive bias (one per output channel).
    """

    def __init__(
        self,
        kernel_size: IntPair,
        *,
        in_channels: int | None = None,
        out_channels: int | None = None,
        stride: IntPair = 1,
        padding: IntPair = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if (in_channels is None) != (out_channels is None):
            raise ValueError("give both in_channels and out_channels, or neither for the book's 2-D layer")
        self.stride, self.padding = _pair(stride), _pair(padding)
        k_h, k_w = _pair(kernel_size)
        self.multi_channel = in_channels is not None
        if self.multi_channel:
            bound = 1 / math.sqrt(in_channels * k_h * k_w)  # nn.Conv2d's default init, in effect
            self.weight = nn.Parameter(torch.empty(out_channels, in_channels, k_h, k_w).uniform_(-bound, bound))
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound)) if bias else None
        else:
            self.weight = nn.Parameter(torch.rand(k_h, k_w))
            self.bias = nn.Parameter(torch.zeros(1)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.multi_channel:
            y = corr2d_multi_in_out(x, self.weight, stride=self.stride, padding=self.padding)
            return y if self.bias is None else y + self.bias[:, None, None]
        y = corr2d(x, self.weight, stride=self.stride, padding=self.padding)
        return y if self.bias is None else y + self.bias


def pool2d(
    X: torch.Tensor,
    pool_size: IntPair,
    mode: str = "max",
    *,
    stride: IntPair = 1,
    padding: IntPair = 0,
    count_include_pad: bool = True,
) -> torch.Tensor:
    """Max or average pooling of ``X`` (``..., h, w``), D2L §7.5, with per-side padding and stride.

    ``stride`` defaults to 1 as in the book's ``pool2d`` (``nn.MaxPool2d`` defaults to the window size).
    Max pooling pads with -inf, so padding never wins; average pooling pads with zeros and, like
    ``F.avg_pool2d``, divides by the whole window when ``count_include_pad`` (PyTorch's default) and by the
    number of real elements otherwise.
    """
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', not {mode!r}")
    (p_h, p_w), size = _pair(padding), _pair(pool_size)
    X = F.pad(X, (p_w, p_w, p_h, p_h), value=-math.inf if mode == "max" else 0.0)
    _, windows = _windows(X, size, _pair(stride))
    slices = [window for _, _, window in windows]
    if mode == "max":
        return torch.stack(slices).amax(dim=0)
    total = sum(slices)
    if count_include_pad:
        return total / (size[0] * size[1])
    real = F.pad(X.new_ones(X.shape[-2] - 2 * p_h, X.shape[-1] - 2 * p_w), (p_w, p_w, p_h, p_h))
    return total / sum(window for _, _, window in _windows(real, size, _pair(stride))[1])


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


def conv_output_size(n: int, kernel_size: int, padding: int = 0, stride: int = 1) -> int:
    """Output side of a convolution or pooling, in the book's form (D2L §7.3): ``⌊(n − k + p + s) / s⌋``.

    ``padding`` is the *total* number of rows (or columns) added, both sides together: ``nn.Conv2d(padding=1)``
    is ``padding=2`` here. For PyTorch's per-side argument use :func:`conv_output_size_symmetric`.
    """
    size = (n - kernel_size + padding + stride) // stride
    if size < 1:
        raise ValueError(f"a window of {kernel_size} does not fit {n} with total padding {padding}")
    return size


def conv_output_size_symmetric(
    n: int, kernel_size: int, padding: int = 0, stride: int = 1, *, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Output side of ``nn.Conv2d`` / ``nn.MaxPool2d`` / ``nn.AvgPool2d`` with ``padding`` zeros on *each* side.

    ``⌊(n + 2p − d(k − 1) − 1) / s⌋ + 1``, i.e. :func:`conv_output_size` with total padding ``2p`` and the
    dilated kernel ``d(k − 1) + 1``. ``ceil_mode`` (pooling only) rounds up, but as in PyTorch a last window
    that would start in the right padding is dropped.
    """
    span = dilation * (kernel_size - 1) + 1
    if ceil_mode:
        size = -(-(n + 2 * padding - span) // stride) + 1
        if (size - 1) * stride >= n + padding:
            size -= 1
    else:
        size = (n + 2 * padding - span) // stride + 1
    if size < 1:
        raise ValueError(f"a window of {span} does not fit {n} with padding {padding} per side")
    return size


def conv_multiply_adds(
    *, in_channels: int, out_channels: int, kernel_size: IntPair, output_size: IntPair, groups: int = 1
) -> int:
    """Multiply-adds of one convolution on one image: ``c_i·c_o·k_h·k_w·m_h·m_w`` (D2L §7.4's cost).

    With ``groups`` each output channel sees only ``c_i / groups`` input channels.
    """
    (k_h, k_w), (m_h, m_w) = _pair(kernel_size), _pair(output_size)
    return in_channels // groups * out_channels * k_h * k_w * m_h * m_w


def conv_flops(
    *,
    in_channels: int,
    out_channels: int,
    kernel_size: IntPair,
    output_size: IntPair,
    batch_size: int = 1,
    groups: int = 1,
    bias: bool = False,
) -> int:
    """FLOPs of one convolution over ``batch_size`` images: two per multiply-add, plus ``c_o·m_h·m_w`` with bias.

    ``torch.utils.flop_counter.FlopCounterMode`` counts the same two FLOPs per multiply-add and leaves the bias
    out, so ``bias=False`` (the default) is what it reports.
    """
    macs = conv_multiply_adds(
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=kernel_size,
        output_size=output_size,
        groups=groups,
    )
    m_h, m_w = _pair(output_size)
    return batch_size * (2 * macs + (out_channels * m_h * m_w if bias else 0))
