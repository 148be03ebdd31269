"""``python -m cnn_lightning summary``: a layer inspector for the book's networks, with no data and no GPU.

One row per layer or named block, in forward order, with the output shape, parameters, FLOPs and the training
activation memory it adds, as D2L asks the reader to work out by hand for LeNet (§7.6) and the modern CNNs
(chapter 8). Everything comes from one training-mode forward and backward pass on the *meta* device, where
tensors have shapes and dtypes but no data, so even VGG at 224 px costs nothing to run:

* Output shapes come from forward hooks.
* FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` and its per-module ``get_flop_counts()``: two
  FLOPs per multiply-add, counted for matrix products and convolutions only (bias additions, normalization,
  activations and pooling count zero). Rows show the forward pass; the totals also give forward + backward.
* Activation memory is what autograd keeps for the backward pass. ``torch.autograd.graph.saved_tensors_hooks``
  sees every tensor an operation saves; each is charged to the innermost module running when it is saved,
  storages are counted once (a ReLU's output saved again by the next convolution is charged to the ReLU, a
  flattened view to the layer that saved its storage first), and parameters and buffers are not activations.
  A row's figure includes its children's. Activation checkpointing (``DenseNet(memory_efficient=True)``) saves
  its inputs the same way, so its saving shows; the FLOPs of its recomputation are not counted.

The pass runs in training mode (batch norm uses batch statistics, dropout keeps its mask); a batch-norm layer
that would see a single value per channel, which PyTorch cannot train on, runs in eval mode for it instead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch
from lightning.pytorch.plugins.precision import Precision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnn_lightning.errors import ConfigError
from cnn_lightning.models.variants import record_line
from cnn_lightning.scratch.shapes import meta_state
from cnn_lightning.training.classifier import Classifier
from cnn_lightning.training.precision import is_float32

# Containers that only group layers: always expanded, and not a level of ``depth``.
PLAIN_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class LayerRow:
    """One row of the table; every figure includes the module's children."""

    name: str  # qualified name inside the network, e.g. "2.0.conv1"
    type: str
    level: int  # nesting in the table: 0 for the network's own children
    output_shape: tuple[int, ...] | None  # None if never called or not returning one tensor
    params: int
    flops: int  # forward FLOPs for the whole batch, two per multiply-add
    activation_bytes: int  # bytes saved for backward, for the whole batch
    expanded: bool  # its children follow as rows of their own


@dataclass(frozen=True)
class Summary:
    rows: list[LayerRow]
    input_shape: tuple[int, ...]
    params: int
    param_bytes: int
    forward_flops: int
    training_flops: int  # forward + backward
    activation_bytes: int
    dtype: str  # of the parameters and the input


class _TrainingStep(nn.Module):
    """Forward and backward of ``net`` inside one ``functional_call``, so that code reading parameters in the
    backward pass (activation checkpointing recomputes layers there) still gets the meta ones."""

    def __init__(self, net: nn.Module, *, pack: Any, counter: FlopCounterMode) -> None:
        super().__init__()
        self.net, self.pack, self.counter = net, pack, counter
        self.forward_counts: dict[str, dict[Any, int]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t):
            output = self.net(x)
        self.forward_counts = self.counter.get_flop_counts()
        output.sum().backward()
        return output


@dataclass
class _Trace:
    order: dict[nn.Module, int]  # first call
    shapes: dict[nn.Module, tuple[int, ...]]
    saved_bytes: dict[nn.Module, int]  # charged to the innermost module, children not included
    forward_counts: dict[str, dict[Any, int]]  # FlopCounterMode's, keyed "_TrainingStep.net.<name>"
    training_flops: int


def _trace(net: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> _Trace:
    """One training step of ``net`` on meta tensors, recording what :func:`summarize` reports."""
    trace = _Trace(order={}, shapes={}, saved_bytes=defaultdict(int), forward_counts={}, training_flops=0)
    stack = [net]

    def pre_hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        trace.order.setdefault(module, len(trace.order))
        stack.append(module)
        x = args[0] if args else None
        one_per_channel = isinstance(x, torch.Tensor) and x.dim() > 1 and x.numel() == x.shape[1]
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training and one_per_channel:
            module.train(False)  # it cannot train on one value per channel; restored after the pass

    def post_hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        stack.pop()
        if isinstance(output, torch.Tensor):
            trace.shapes[module] = tuple(output.shape)

    meta = meta_state(net)
    # Storages are told apart by their StorageImpl address: meta tensors have no data pointer.
    seen = {t.untyped_storage()._cdata for t in meta.values()}
    kept: list[torch.Tensor] = []  # so that no storage address is reused during the pass

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in seen:
            seen.add(storage._cdata)
            kept.append(t)
            trace.saved_bytes[stack[-1]] += storage.nbytes()
        return t

    modes = {module: module.training for module in net.modules()}
    handles = [
        hook(fn)
        for m in net.modules()
        for hook, fn in ((m.register_forward_pre_hook, pre_hook), (m.register_forward_hook, post_hook))
    ]
    step = _TrainingStep(net, pack=pack, counter=FlopCounterMode(display=False))
    try:
        net.train()
        with torch.enable_grad(), step.counter:
            x = torch.zeros(shape, device="meta", dtype=dtype)
            torch.func.functional_call(step, {f"net.{k}": v for k, v in meta.items()}, (x,))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    trace.forward_counts, trace.training_flops = step.forward_counts, step.counter.get_total_flops()
    return trace


def summarize(
    model: nn.Module, *, batch_size: int = 1, depth: int = 0, input_shape: tuple[int, ...] | None = None
) -> Summary:
    """Measure ``model`` (a :class:`Classifier`, or any module with ``input_shape`` = ``(C, H, W)``).

    ``depth`` is how many levels of named blocks (``Residual``, ``DenseBlock``, ``Inception``…) to open;
    plain ``nn.Sequential`` containers are always opened. The model itself is left untouched.
    """
    if isinstance(model, Classifier):
        net, shape = model.net, (batch_size, model.hparams.in_channels, model.input_size, model.input_size)
    elif input_shape is not None:
        net, shape = model, (batch_size, *input_shape)
    else:
        raise ValueError("input_shape (C, H, W) is needed for a module that is not a Classifier")
    dtype = next(net.parameters(), torch.empty(0)).dtype
    trace = _trace(net, shape, dtype)
    root = f"{_TrainingStep.__name__}.net"  # FlopCounterMode names modules by class of the root, then attributes

    def row(name: str, module: nn.Module, level: int, expanded: bool) -> LayerRow:
        return LayerRow(
            name=name,
            type=type(module).__name__,
            level=level,
            output_shape=trace.shapes.get(module),
            params=sum(p.numel() for p in module.parameters()),
            flops=sum(trace.forward_counts.get(f"{root}.{name}", {}).values()),
            activation_bytes=sum(trace.saved_bytes[m] for m in module.modules()),
            expanded=expanded,
        )

    def walk(module: nn.Module, prefix: str, level: int, budget: int) -> list[LayerRow]:
        rows = []
        children = sorted(module.named_children(), key=lambda item: trace.order.get(item[1], len(trace.order)))
        for name, child in children:
            plain = type(child) in PLAIN_CONTAINERS
            if plain and child not in trace.order:  # only iterated by its owner (DenseBlock.net): no row
                rows += walk(child, f"{prefix}{name}.", level, budget)
                continue
            expanded = next(child.children(), None) is not None and (plain or budget > 0)
            rows.append(row(prefix + name, child, level, expanded))
            if expanded:
                rows += walk(child, f"{prefix}{name}.", level + 1, budget if plain else budget - 1)
        return rows

    return Summary(
        rows=walk(net, "", 0, depth),
        input_shape=shape,
        params=sum(p.numel() for p in net.parameters()),
        param_bytes=sum(p.numel() * p.element_size() for p in net.parameters()),
        forward_flops=sum(trace.forward_counts.get("Global", {}).values()),
        training_flops=trace.training_flops,
        activation_bytes=sum(trace.saved_bytes.values()),
        dtype=str(dtype).removeprefix("torch."),
    )


def layer_table(model: nn.Module, batch_size: int = 1, *, depth: int = 0) -> list[LayerRow]:
    """The rows of :func:`summarize` for a :class:`Classifier`."""
    return summarize(model, batch_size=batch_size, depth=depth).rows


def _count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}"


def _bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def format_summary(title: str, summary: Summary) -> str:
    """The table as text: one row per layer, then totals."""
    header = ("Layer", "Type", "Output shape", "Params", "FLOPs", "Act. memory")
    lines = [
        (
            "  " * r.level + r.name,
            r.type,
            "-" if r.output_shape is None else str(list(r.output_shape)),
            _count(r.params) if r.params else "-",
            _count(r.flops) if r.flops else "-",
            _bytes(r.activation_bytes) if r.activation_bytes else "-",
        )
        for r in summary.rows
    ]
    total = ("Total", "", "", _count(summary.params), _count(summary.forward_flops), _bytes(summary.activation_bytes))
    widths = [max(len(line[i]) for line in (header, *lines, total)) for i in range(len(header))]

    def fmt(cells: tuple[str, ...]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:3], widths[:3], strict=True)]
        right = [c.rjust(w) for c, w in zip(cells[3:], widths[3:], strict=True)]
        return "  ".join(left + right).rstrip()

    rule = "-" * len(fmt(tuple("x" * w for w in widths)))
    batch = summary.input_shape[0]
    return "\n".join(
        [
            f"{title}: input {list(summary.input_shape)} {summary.dtype}, one training-mode pass on the meta device",
            fmt(header),
            rule,
            *(fmt(line) for line in lines),
            rule,
            fmt(total),
            f"Parameters: {summary.params:,} ({_bytes(summary.param_bytes)}).",
            f"FLOPs (2 per multiply-add): {_count(summary.forward_flops)} forward, "
            f"{_count(summary.training_flops)} forward + backward, for a batch of {batch}.",
            f"Activation memory saved for backward: {_bytes(summary.activation_bytes)} for a batch of {batch}.",
        ]
    )


def print_summary(
    model: Classifier,
    *,
    batch_size: int = 1,
    depth: int = 0,
    input_size: int | None = None,
    precision: Precision | None = None,
) -> None:
    """Print the table of ``model`` (rebuilt at ``input_size`` if given), its record and a note on a ``precision``
    plugin that does not compute in float32."""
    for value, name, least in ((batch_size, "--batch_size", 1), (depth, "--depth", 0), (input_size, "--input_size", 1)):
        if value is not None and value < least:
            raise ConfigError(f"summary: {name} takes a whole number of at least {least}, got {value}.")
    if input_size is not None and input_size != model.input_size:
        settings = {key: value for key, value in model.hparams.items() if not key.startswith("_")}
        model = type(model)(**{**settings, "input_size": input_size})
    summary = summarize(model, batch_size=batch_size, depth=depth)
    cls = type(model)
    print(format_summary(f"{cls.__name__} ({cls.__module__}.{cls.__qualname__})", summary))
    if line := record_line(model):  # the book's figures, or what a variant changes instead of claiming them
        print(line)
    if precision is not None and not is_float32(precision):
        print(
            f"Note: the config trains with precision {precision.precision}; these figures are for {summary.dtype} "
            "(autocast does not run on the meta device, so the dtypes it would save are not modelled)."
        )
