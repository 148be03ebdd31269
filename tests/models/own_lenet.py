"""A student's own network in a module of their own: a LeNet subclass, to check that every command takes it."""

from __future__ import annotations

from cnn_lightning.models import LeNet


class WideLeNet(LeNet):
    """The book's LeNet with twice its convolution channels and ReLU, as a class of its own."""

    def __init__(self, channels: tuple[int, ...] = (12, 32), activation: str = "relu", **kwargs) -> None:
        super().__init__(channels=channels, activation=activation, **kwargs)
