"""The classic CNNs of *Dive into Deep Learning* as Lightning modules trained on Fashion-MNIST.

The package by role: ``models`` (the book's networks), ``data`` (Fashion-MNIST and your own pictures), ``training``
(the shared classifier and how it trains), ``callbacks`` (one per file), ``memory`` (host memory), ``commands`` (one
module per command of ``python -m cnn_lightning``), ``scratch`` (the book's from-scratch operators and shape
arithmetic). Here: the Python API (:func:`load_classifier`) and :func:`configure_process`, the process-wide settings
the command line makes at its start.
"""

from typing import Any

from cnn_lightning import legacy

__version__ = "0.2.0"
__all__ = ["ImageClassifier", "Prediction", "configure_process", "load_classifier"]

legacy.install()  # 0.1.0's module paths (cnn_lightning.batching.AutoMicroBatch, ...) keep resolving


def __getattr__(name: str) -> Any:
    # Imported on first use: ``python -m cnn_lightning`` must make its process settings before torch loads.
    if name == "configure_process":
        from cnn_lightning.process import configure_process

        return configure_process
    if name in __all__:
        from cnn_lightning import api

        return getattr(api, name)
    raise AttributeError(f"module 'cnn_lightning' has no attribute {name!r}")
