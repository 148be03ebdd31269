"""A network proved to map its input size to class scores before anything trains it, and the sizes a configured
network takes, for the advice of a size error (a variant may refuse the book's)."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from cnn_lightning.errors import InputSizeError
from cnn_lightning.scratch.shapes import output_shape


def checked_network(model: Any) -> nn.Module:
    """``model.build_network()``, proved on the meta device to map ``model.input_size`` images to
    ``num_classes`` scores; else one line naming the size and one that works (:func:`size_advice`)."""
    hp, name, size = model.hparams, type(model).__name__, model.input_size
    try:
        net = model.build_network()
        shape = output_shape(net, (2, hp.in_channels, size, size))
    except RuntimeError as error:
        problem = str(error).splitlines()[0]
    else:
        if tuple(shape) == (2, hp.num_classes):
            return net
        problem = f"they give outputs of shape {tuple(shape)[1:]}, not ({hp.num_classes},)"
    raise InputSizeError(f"{name} cannot take {size}x{size} images: {problem}. {size_advice(model)}") from None


def book_input_size(model_class: type) -> int:
    """The image side the book trains this architecture at (its record's, else its ``input_size`` default)."""
    record = getattr(model_class, "record", None)
    return record.input_size if record else inspect.signature(model_class.__init__).parameters["input_size"].default


FLAG = "--model.init_args.input_size"


def takes_size(model: Any, size: int) -> bool:
    """Whether ``model``'s network, built as configured but for ``size`` × ``size`` images, maps them to class
    scores. Built on the meta device: no weights are drawn, so the random state is untouched."""
    saved = model.input_size
    model.input_size = size  # what build_network reads (flat_features of the head)
    try:
        with torch.device("meta"):
            net = model.build_network()
        shape = output_shape(net, (2, model.hparams.in_channels, size, size))
    except RuntimeError:
        return False
    finally:
        model.input_size = saved
    return tuple(shape) == (2, model.hparams.num_classes)


def smallest_size(model: Any, *, above: int, limit: int) -> int | None:
    """The smallest size in (``above``, ``limit``] that ``model`` takes, else the largest below ``above``."""
    # Not a bisection: pooling and strides make the sizes a network takes a union of ranges, not one range.
    for size in [*range(above + 1, limit + 1), *range(above - 1, 0, -1)]:
        if takes_size(model, size):
            return size
    return None


def size_advice(model: Any) -> str:
    """What to set after ``model`` refused its ``input_size``: the book's size where this network (maybe a variant
    of the book's) takes it, else the nearest size it takes, else which settings to change."""
    tried, book = model.input_size, book_input_size(type(model))
    limit = 4 * max(tried, book, 64)
    if book != tried and takes_size(model, book):
        smallest = smallest_size(model, above=tried, limit=book) if tried < book else None
        less = f"; the smallest size it takes is {smallest}" if smallest is not None and smallest < book else ""
        return f"Use its book size {book} ({FLAG}{less})."
    size = smallest_size(model, above=tried, limit=limit)
    if size is None:
        return (
            f"No size up to {limit} works with these settings: give the network fewer downsampling layers, smaller "
            "kernels or more padding."
        )
    if book == tried:
        return f"{book} is its book size, but these settings need another: use {FLAG} {size}, the nearest it takes."
    return f"Its book size {book} does not fit these settings either: use {FLAG} {size}, the nearest it takes."
