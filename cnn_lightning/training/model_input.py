"""What a :class:`~cnn_lightning.training.classifier.Classifier`'s forward takes: a batch as the data module prepares
it for the model (float ``[B, 1, S, S]`` in [0, 1], resized to the model's ``input_size``), or images as the data
module's loaders hand them out (uint8 ``[B, 28, 28]``), which it prepares here as the data module would.

So a notebook's ``images, labels = next(iter(data.test_dataloader())); model(images)`` works as the book's
``net(X)`` does: a uint8 tensor can only be raw images (the data module hands the model floats), so nothing a training
step passes is touched, and the check costs a dtype comparison.
"""

from __future__ import annotations

from typing import Any

import torch

from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.resident_batches import resize_batch


def prepared(model: Any, images: torch.Tensor) -> torch.Tensor:
    """``images`` as ``model``'s network takes them: uint8 images (``[B, H, W]`` or ``[B, 1, H, W]``) resized to its
    ``input_size`` and scaled to [0, 1] exactly as the data module does (and standardized where the data module it
    trains with standardizes: ``--data.normalize``), a float ``[B, H, W]`` given its channel, and NHWC where the
    model uses ``channels_last``."""
    if images.dtype == torch.uint8:
        images = images.reshape(-1, *images.shape[-2:]).to(model.device)
        datamodule = getattr(model._trainer, "datamodule", None)  # none once the model is loaded on its own
        if isinstance(datamodule, FashionMNISTDataModule):
            images = datamodule.model_images(images, size=model.input_size)  # its evaluation path
        else:
            images = resize_batch(images, model.input_size)
    elif images.ndim == 3:
        images = images.unsqueeze(1)
    if model.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images
