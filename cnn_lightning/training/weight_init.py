"""Weight initialization of every network: the book's Xavier, Kaiming's, or PyTorch's default (D2L §7.6, ex. 2.5)."""

from __future__ import annotations

from typing import Literal

from torch import nn

from cnn_lightning.errors import require_choice

Init = Literal["xavier", "kaiming", "default"]
INITS: tuple[str, ...] = ("xavier", "kaiming", "default")


def init_weights(net: nn.Module, scheme: str = "xavier") -> None:
    """Initialize the convolution and linear layers of ``net`` in place.

    * ``xavier``: Xavier-uniform weights (Glorot & Bengio 2010), biases left at PyTorch's default, exactly as the
      book's ``init_weights`` (D2L §7.6) does; the only scheme that keeps the book's networks bit-exact.
    * ``kaiming``: Kaiming-normal weights with the ReLU gain over the fan-in and zero biases, as He et al. (2015)
      derive for ReLU networks (torchvision's ResNet uses the same rule over the fan-out).
    * ``default``: whatever each layer's ``reset_parameters`` drew when it was built (PyTorch's Kaiming-uniform
      with a = √5, which amounts to uniform ±1/√fan_in).

    Exactly ``nn.Conv2d`` and ``nn.Linear`` are initialized, not subclasses, as in the book.
    """
    require_choice(scheme, INITS, flag="--model.init_args.init")
    if scheme == "default":
        return  # already drawn at construction
    for module in net.modules():
        if type(module) in (nn.Linear, nn.Conv2d):
            if scheme == "xavier":
                nn.init.xavier_uniform_(module.weight)
            else:
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
