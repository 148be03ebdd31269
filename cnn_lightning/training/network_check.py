"""A network proved to map its input size to class scores before anything trains it."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from cnn_lightning.errors import InputSizeError
from cnn_lightning.scratch.shapes import output_shape


def checked_network(model: Any) -> nn.Module:
    """``model.build_network()``, proved on the meta device to map ``model.input_size`` images to
    ``num_classes`` scores; else one line naming the size and the one the book uses."""
    hp, name, size = model.hparams, type(model).__name__, model.input_size
    try:
        net = model.build_network()
        shape = output_shape(net, (2, hp.in_channels, size, size))
    except RuntimeError as error:
        raise InputSizeError(
            f"{name} cannot take {size}x{size} images: {str(error).splitlines()[0]}. "
            f"Use its book size {book_input_size(type(model))} (--model.init_args.input_size)."
        ) from None
    if tuple(shape) != (2, hp.num_classes):
        raise InputSizeError(
            f"{name} cannot take {size}x{size} images: they give outputs of shape {tuple(shape)[1:]}, "
            f"not ({hp.num_classes},). Use its book size {book_input_size(type(model))}."
        )
    return net


def book_input_size(model_class: type) -> int:
    """The image side the book trains this architecture at (its record's, else its ``input_size`` default)."""
    record = getattr(model_class, "record", None)
    return record.input_size if record else inspect.signature(model_class.__init__).parameters["input_size"].default
