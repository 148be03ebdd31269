"""Per-sample augmentation of training batches on their device, and the dataset's normalization.

Kornia's augmentations draw every parameter per image of a batch (``same_on_batch=False``) on the device the
batch is on; torchvision's v2 transforms, given a batched tensor, draw one crop or flip for the whole batch.
Everything here is off by default: the book's configs train on plain ``[0, 1]`` images.
"""

from __future__ import annotations

import torch
from kornia import augmentation as K
from torch import nn

from cnn_lightning.errors import ConfigError

# Mean and std of the 60,000 Fashion-MNIST training images in [0, 1] (tests/data/test_augmentation.py recomputes them):
# the defaults until the data module computes its dataset's own (data/datasets.py), and those of a checkpoint older
# than that.
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530
SOURCE_SIZE = 28  # crop padding is given in pixels of the 28 px original and scaled with the resize


def normalize(images: torch.Tensor, mean: float = FASHION_MNIST_MEAN, std: float = FASHION_MNIST_STD) -> torch.Tensor:
    """``[0, 1]`` images → zero mean and unit std over the training set (``mean``, ``std``: its statistics)."""
    return (images - mean) / std


class TrainAugmentation(nn.Module):
    """Random crop with zero padding and horizontal flip (as in ResNet's CIFAR recipe, He et al. 2016), then
    normalization, then random erasing (Zhong et al. 2017, arXiv:1708.04896) filling with the dataset mean.

    Args:
        size: side of the images it receives (the model's input size).
        crop_padding: pixels of the 28 px original padded on each side before a random crop back to ``size``;
            scaled with the resize (4 at 28 px is 14 at 96 px). 0: no crop.
        horizontal_flip: flip half of the images left to right.
        random_erasing: probability that an image gets one random rectangle erased. 0: none.
        normalize: standardize by the dataset's mean and std (evaluation batches get the same).
    """

    def __init__(
        self,
        *,
        size: int,
        crop_padding: int = 0,
        horizontal_flip: bool = False,
        random_erasing: float = 0.0,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        if crop_padding < 0 or crop_padding >= SOURCE_SIZE:
            raise ConfigError(
                f"random_crop_padding must be between 0 and {SOURCE_SIZE - 1} pixels, got {crop_padding}. "
                "Set --data.random_crop_padding (e.g. 4)."
            )
        if not 0 <= random_erasing <= 1:
            raise ConfigError(
                f"random_erasing is a probability in [0, 1], got {random_erasing}. Set --data.random_erasing."
            )
        self.crop_padding, self.horizontal_flip, self.random_erasing = crop_padding, horizontal_flip, random_erasing
        self.normalize = normalize
        self.mean, self.std = FASHION_MNIST_MEAN, FASHION_MNIST_STD  # the dataset's, once set_statistics is called
        geometric: list[nn.Module] = []
        if crop_padding:
            padding = max(1, round(crop_padding * size / SOURCE_SIZE))
            geometric.append(K.RandomCrop((size, size), padding=padding, fill=0))
        if horizontal_flip:
            geometric.append(K.RandomHorizontalFlip(p=0.5))
        self.geometric = K.ImageSequential(*geometric) if geometric else None
        self.erasing: K.RandomErasing | None = None
        self._build_erasing()

    def _build_erasing(self) -> None:
        fill = 0.0 if self.normalize else self.mean  # the mean either way
        self.erasing = K.RandomErasing(p=self.random_erasing, value=fill) if self.random_erasing else None

    def set_statistics(self, mean: float, std: float) -> None:
        """The training set's mean and std in [0, 1], for normalization and the erased rectangles' fill."""
        self.mean, self.std = mean, std
        self._build_erasing()

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """Normalized images back in [0, 1] for display (unchanged when nothing normalizes)."""
        return images * self.std + self.mean if self.normalize else images

    @property
    def is_random(self) -> bool:
        """Whether training images differ from evaluation images."""
        return self.geometric is not None or self.erasing is not None

    def describe(self) -> str:
        """What is applied to training batches, e.g. ``random crop (pad 4), flip, normalize, erasing p=0.5``."""
        parts = [f"random crop (pad {self.crop_padding})"] if self.crop_padding else []
        parts += ["horizontal flip"] if self.horizontal_flip else []
        parts += ["normalize"] if self.normalize else []
        parts += [f"random erasing p={self.random_erasing:g}"] if self.random_erasing else []
        return ", ".join(parts) or "none"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """A training batch ``[B, C, H, W]`` in [0, 1], each image with its own draw."""
        if self.geometric is not None:
            images = self.geometric(images)
        if self.normalize:
            images = normalize(images, self.mean, self.std)
        if self.erasing is not None:
            images = self.erasing(images)
        return images

    def evaluate(self, images: torch.Tensor) -> torch.Tensor:
        """An evaluation batch: normalized if training normalizes, otherwise untouched."""
        return normalize(images, self.mean, self.std) if self.normalize else images
