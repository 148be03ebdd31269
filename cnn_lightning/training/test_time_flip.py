"""Test-time flips: each image's class probabilities averaged with its left-right mirror's.

Fashion-MNIST's classes keep their identity in a mirror (the recipes train on flipped images too), so two views of an
image vote better than one: a classifier's ``test_time_flip`` setting evaluates (validation, test, predict) and
exports this way, training never.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def flip_averaged_probabilities(classify: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """The mean of ``classify``'s softmax over ``images`` and their mirrors (the last axis reversed), in float32."""
    return (classify(images).float().softmax(dim=1) + classify(images.flip(-1)).float().softmax(dim=1)) / 2


def flip_averaged_logits(classify: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """Logits whose softmax is :func:`flip_averaged_probabilities` (their log), for the loss and the metrics."""
    probabilities = flip_averaged_probabilities(classify, images)
    return probabilities.clamp_min(torch.finfo(probabilities.dtype).tiny).log()
