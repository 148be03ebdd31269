"""A stage's loss and accuracy over an epoch, as the book's ``train_ch6`` accumulates them: over every example."""

from __future__ import annotations

import math

import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy


class EpochMetrics(nn.Module):
    """Loss and accuracy of one stage (training, validation or test) over the batches since the last ``compute``.

    Each batch leaves its predicted classes, labels and mean loss on the device (16 bytes an example, no host
    read); ``compute`` hands them to torchmetrics, ``MulticlassAccuracy`` and ``MeanMetric`` weighted by batch size,
    in one update each, and starts afresh: updating both per batch costs Python and a dozen tiny kernels every step,
    and a ``self.log`` per batch more than a whole LeNet step on a GPU (docs/measurements.md, "Per-step costs").
    torchmetrics syncs the results over DDP ranks.

    Args:
        num_classes: classes of the labels.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.acc = MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False)
        # A NaN loss stays NaN in the mean. Not nan_strategy="disable": it drops the weights (torchmetrics #3434),
        # which made the epoch loss a mean of batch means, the last, smaller batch overweighted.
        self.loss = MeanMetric(nan_strategy=math.nan)
        self._batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def add(self, logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> None:
        """Keep one batch's outcome: its predicted classes, its labels and its mean loss."""
        self.add_predicted(logits.detach().argmax(dim=1), labels, loss.detach())

    def add_predicted(self, predicted: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> None:
        """Keep one batch's outcome from its predicted classes (a replayed CUDA graph's copies of them)."""
        self._batches.append((predicted, labels, loss))

    def compute(self) -> dict[str, torch.Tensor]:
        """``{"loss": ..., "acc": ...}`` over the batches added since the last call (empty if none), then reset."""
        if not self._batches:
            return {}
        predictions, labels, losses = zip(*self._batches, strict=True)
        self._batches.clear()
        self.acc.update(torch.cat(predictions), torch.cat(labels))
        sizes = torch.tensor([len(batch) for batch in labels], device=losses[0].device)
        self.loss.update(torch.stack(losses), weight=sizes)
        results = {"loss": self.loss.compute(), "acc": self.acc.compute()}
        self.loss.reset()
        self.acc.reset()
        return results
