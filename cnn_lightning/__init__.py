"""The classic CNNs of *Dive into Deep Learning* as Lightning modules trained on Fashion-MNIST."""

__version__ = "0.1.0"
