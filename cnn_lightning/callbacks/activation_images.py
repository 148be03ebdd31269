"""The activations of chosen layers, and the first convolution's filters, as TensorBoard images when training ends
(D2L §7.6, exercises 4 and 5): the same grids as ``python -m cnn_lightning activations`` writes for a finished run."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger

from cnn_lightning.activations import (
    MAX_CHANNELS,
    activation_grid,
    capture,
    default_layers,
    examples_of,
    filter_grid,
    find_layers,
    first_convolution,
    model_inputs,
    pictures_from,
)
from cnn_lightning.callbacks.dashboards import picture_tag
from cnn_lightning.data.datasets import DATASETS, class_indices
from cnn_lightning.data.own_images import Invert


class ActivationImages(Callback):
    """Logs ``views/activations/<layer>`` (training images of ``classes``), ``views/activations_own/<layer>`` (the
    pictures of ``images``, where given) and ``views/activations/filters-<first convolution>`` to TensorBoard when
    training ends (``views``: after the curves in Time Series, see :mod:`~cnn_lightning.callbacks.dashboards`).

    Each grid has one row per image, the image as the network saw it first, then one cell per channel (the first
    ``max_channels``), each channel scaled over the images shown. Names are checked when the fit starts, so a wrong
    layer or class stops it before training. Epoch-level only: nothing per step, the engine's chunks stay on.

    Args:
        layers: layers as ``summary`` names them, e.g. ``[features.1, features.4]`` (default: the first two
            convolutions).
        classes: training images of these classes, e.g. ``[Sweater, Coat]`` (default: every class).
        num_images: training images shown, spread evenly over the classes.
        images: a folder, file or glob of your own pictures (given the dataset's look, as ``predict``), or
            ``generated`` (noise, shapes, stripes: unlike any dataset's), shown too.
        max_channels: channels drawn per layer.
        invert: for ``images``: make dark-on-light pictures light-on-dark (``auto``: decided per picture).
    """

    def __init__(
        self,
        layers: list[str] | None = None,
        classes: list[str] | None = None,
        num_images: int = 8,
        images: str | None = None,
        max_channels: int = MAX_CHANNELS,
        invert: Invert = "auto",
    ) -> None:
        super().__init__()
        self.layers, self.classes, self.num_images = layers, classes, num_images
        self.images, self.max_channels, self.invert = images, max_channels, invert
        self._labels: list[int] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        find_layers(pl_module.net, self.layers or default_layers(pl_module.net), type(pl_module).__name__)
        dataset = getattr(trainer.datamodule, "dataset", None) or DATASETS["fashion_mnist"]
        every = list(range(len(dataset.classes)))
        self._labels = class_indices(dataset, self.classes) if self.classes else every
        if self.images:
            pictures_from(self.images, self.invert)  # a wrong path fails now, not after the training

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = next((lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if writer is None or not trainer.is_global_zero or not hasattr(trainer.datamodule, "split"):
            return
        net = pl_module.net
        found = find_layers(net, self.layers or default_layers(net), type(pl_module).__name__)
        images, labels = trainer.datamodule.split("train")
        sets = {"activations": images[examples_of(labels.cpu(), self._labels, self.num_images).to(images.device)]}
        if self.images:
            sets["activations_own"] = pictures_from(self.images, self.invert)[0]
        for group, pictures in sets.items():
            for name, grid in self.grids(trainer, pl_module, pictures, found).items():
                writer.add_image(picture_tag(f"{group}/{name}"), grid, trainer.global_step)
        if (conv := first_convolution(net)) is not None:
            writer.add_image(picture_tag(f"activations/filters-{conv[0]}"), filter_grid(conv[1]), trainer.global_step)

    def grids(
        self, trainer: L.Trainer, pl_module: L.LightningModule, pictures: torch.Tensor, found: list[tuple[str, Any]]
    ) -> dict[str, torch.Tensor]:
        """One grid per layer for uint8 ``pictures``, prepared as the data module prepares evaluation batches."""
        augmentation = getattr(trainer.datamodule, "augmentation", None)
        normalization = (augmentation.mean, augmentation.std) if augmentation and augmentation.normalize else None
        pictures = pictures.to(pl_module.device)
        outputs = capture(pl_module.net, model_inputs(pictures, pl_module.input_size, normalization), found)
        shown = model_inputs(pictures, pl_module.input_size, None).cpu()
        return {name: activation_grid(shown, outputs[name], self.max_channels) for name, _ in found}
