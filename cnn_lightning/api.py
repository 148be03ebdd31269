"""Classify from Python: load a run or checkpoint once, then pass tensors or image files.

from cnn_lightning import load_classifier
classify = load_classifier("lightning_logs/lenet/version_0")        # its best checkpoint
for p in classify(["shoe.jpg", "photos/"]):                    # files, folders, globs, or a uint8 tensor
    print(p.source, p.prediction, f"{p.probability:.2f}")
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from cnn_lightning.data.augmentation import FASHION_MNIST_MEAN, FASHION_MNIST_STD, normalize
from cnn_lightning.data.datasets import checkpoint_normalization
from cnn_lightning.data.own_images import Invert, load_images
from cnn_lightning.data.resident_batches import resize_batch
from cnn_lightning.training.classifier import Classifier
from cnn_lightning.training.trained_model import load_trained


@dataclass(frozen=True)
class Prediction:
    """One image's result: where it came from, the predicted class name (``prediction``, as the column of
    ``predict``'s CSV, whose ``label`` is the true class), its probability, and every class's."""

    source: str
    prediction: str
    probability: float
    probabilities: dict[str, float]

    @property
    def label(self) -> str:
        """The predicted class under its 0.2.0 name, kept until 0.4.0: ``prediction`` (a label is the true class)."""
        warnings.warn(
            "Prediction.label is the predicted class, now named Prediction.prediction (as in predict's CSV, whose "
            "label column is the true class); .label goes in 0.4.0.",
            FutureWarning,
            stacklevel=2,
        )
        return self.prediction


class ImageClassifier:
    """A trained model with its class names, ready to classify; build it with :func:`load_classifier`."""

    def __init__(
        self,
        model: torch.nn.Module,
        categories: list[str],
        device: str | torch.device = "cpu",
        *,
        normalized: bool | tuple[float, float] = False,
    ) -> None:
        self.model, self.categories, self.device = model.eval().to(device), categories, torch.device(device)
        # Trained on standardized images (--data.normalize): the training set's (mean, std); True: Fashion-MNIST's.
        self.normalized = (FASHION_MNIST_MEAN, FASHION_MNIST_STD) if normalized is True else normalized

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, classes]`` for uint8 images ``[N, 28, 28]`` or ``[N, 1, 28, 28]`` in the Fashion-MNIST look, or
        float images in [0, 1] already at the model's input size."""
        images = images.to(self.device)
        if images.dtype == torch.uint8:
            images = resize_batch(images.reshape(-1, *images.shape[-2:]), self.model.input_size)
        elif images.ndim == 3:
            images = images.unsqueeze(1)
        if self.normalized:
            images = normalize(images, *self.normalized)
        judge = getattr(self.model, "evaluation_logits", self.model)  # a Classifier's test-time flips, if set
        return judge(images).float().softmax(dim=1).cpu()

    def __call__(
        self, inputs: torch.Tensor | str | Path | Sequence[str | Path], invert: Invert = "auto"
    ) -> list[Prediction]:
        """Classify a tensor batch (see :meth:`probabilities`), or image files, folders and globs (given the
        Fashion-MNIST look first, as ``predict --data.predict_path`` does)."""
        if isinstance(inputs, torch.Tensor):
            images, sources = inputs, [f"tensor:{index}" for index in range(len(inputs))]
        else:
            paths = [inputs] if isinstance(inputs, str | Path) else list(inputs)
            loaded = [load_images(str(path), invert) for path in paths]
            images = torch.cat([batch for batch, _ in loaded])
            sources = [source for _, names in loaded for source in names]
        results = []
        for source, row in zip(sources, self.probabilities(images), strict=True):
            best = int(row.argmax())
            every = {name: float(value) for name, value in zip(self.categories, row.tolist(), strict=True)}
            results.append(Prediction(source, self.categories[best], float(row[best]), every))
        return results


def load_classifier(
    path: str | Path, device: str | torch.device = "cpu", model_class: type[Classifier] | None = None
) -> ImageClassifier:
    """An :class:`ImageClassifier` from a checkpoint file or a run folder (its best checkpoint, else last), of any
    importable ``Classifier`` subclass; ``model_class`` for a checkpoint that does not name its class (one saved by a
    plain ``lightning.Trainer``)."""
    model, checkpoint, _ = load_trained(path, model_class)
    categories = list(checkpoint.get("categories") or model.categories)
    return ImageClassifier(model, categories, device, normalized=checkpoint_normalization(checkpoint) or False)
