"""Cross-correlation, convolution and pooling from scratch, as D2L builds them by hand before switching to ``torch.nn``.

§7.2 cross-correlation and the learnable ``Conv2D``, §7.3 padding and stride, §7.4 multiple input and output
channels, §7.5 pooling. They are written for reading, not speed; the tests check each against its PyTorch
counterpart.

Conventions: padding arguments are *per side*, as in ``nn.Conv2d(padding=...)``; the book's output-size formula
counts the *total* padding instead (:mod:`cnn_lightning.scratch.arithmetic` keeps both forms).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lightning.scratch.arithmetic import IntPair, pair


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
    p_h, p_w = pair(padding)
    X = F.pad(X, (p_w, p_w, p_h, p_h))
    _, windows = _windows(X, tuple(K.shape), pair(stride))
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
        self.stride, self.padding = pair(stride), pair(padding)
        k_h, k_w = pair(kernel_size)
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
    (p_h, p_w), size = pair(padding), pair(pool_size)
    X = F.pad(X, (p_w, p_w, p_h, p_h), value=-math.inf if mode == "max" else 0.0)
    _, windows = _windows(X, size, pair(stride))
    slices = [window for _, _, window in windows]
    if mode == "max":
        return torch.stack(slices).amax(dim=0)
    total = sum(slices)
    if count_include_pad:
        return total / (size[0] * size[1])
    real = F.pad(X.new_ones(X.shape[-2] - 2 * p_h, X.shape[-1] - 2 * p_w), (p_w, p_w, p_h, p_h))
    return total / sum(window for _, _, window in _windows(real, size, pair(stride))[1])
