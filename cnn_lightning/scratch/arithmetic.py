"""The book's arithmetic of a convolution: its output size (D2L §7.3) and its cost in multiply-adds and FLOPs (§7.4)."""

from __future__ import annotations

IntPair = int | tuple[int, int]


def pair(value: IntPair) -> tuple[int, int]:
    """``(value, value)`` for one int, else the pair as ints: a size or stride given for both sides at once."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


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
    (k_h, k_w), (m_h, m_w) = pair(kernel_size), pair(output_size)
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
    m_h, m_w = pair(output_size)
    return batch_size * (2 * macs + (out_channels * m_h * m_w if bias else 0))
