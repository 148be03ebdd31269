"""The classic CNNs of *Dive into Deep Learning* as Lightning modules trained on Fashion-MNIST."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["ImageClassifier", "Prediction", "load_classifier"]


def __getattr__(name: str) -> Any:
    # Imported on first use: ``python -m cnn_lightning`` and the models need none of it.
    if name in __all__:
        from cnn_lightning import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'cnn_lightning' has no attribute {name!r}")
