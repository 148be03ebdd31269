"""The datasets a run can train on (``--data.dataset``): Fashion-MNIST, the book's (Xiao et al. 2017); the original
MNIST digits (LeCun et al. 1998), which Fashion-MNIST was made to replace (D2L §7.6, exercise 3); and Kuzushiji-MNIST
(Clanuwat et al. 2018), ten cursive Japanese characters. All three are 28 × 28 grayscale images in ten classes,
60,000 for training and 10,000 for the test, in the same four idx files, read by torchvision's dataset classes.

Their normalization constants are not written down here: the data module computes each dataset's mean and standard
deviation from its training images (:func:`pixel_statistics`) and keeps them in its checkpoints, where ``predict``,
``export`` and :func:`cnn_lightning.load_classifier` read them (:func:`checkpoint_normalization`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torchvision.datasets import KMNIST, MNIST, FashionMNIST

from cnn_lightning.data.augmentation import FASHION_MNIST_MEAN, FASHION_MNIST_STD
from cnn_lightning.data.fashion_mnist import DEBIAN_DIR
from cnn_lightning.errors import ConfigError

DatasetName = Literal["fashion_mnist", "mnist", "kmnist"]
STATE_KEY = "normalization"  # in the data module's state_dict, which Lightning keeps in every checkpoint


@dataclass(frozen=True)
class Dataset:
    """One dataset: its torchvision class (which names its classes and its folder, ``data_dir/<Class>/raw``), the
    offline folders known to hold it, and other names a student may call its classes by."""

    name: str
    title: str
    source: type[MNIST]
    offline_dirs: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        """The class names in label order, as torchvision gives them."""
        return list(self.source.classes)


DATASETS: dict[str, Dataset] = {
    "fashion_mnist": Dataset(
        "fashion_mnist",
        "Fashion-MNIST",
        FashionMNIST,
        offline_dirs=(DEBIAN_DIR,),
        # The book's exercise speaks of sweaters and coats; the dataset calls a sweater a pullover.
        aliases={"sweater": "Pullover", "t-shirt": "T-shirt/top", "top": "T-shirt/top", "boot": "Ankle boot"},
    ),
    "mnist": Dataset("mnist", "MNIST", MNIST),
    "kmnist": Dataset("kmnist", "Kuzushiji-MNIST", KMNIST),
}


def get_dataset(name: str) -> Dataset:
    """The dataset named ``name``, or one line naming those offered."""
    if name not in DATASETS:
        raise ConfigError(f"--data.dataset {name} is not offered. Use one of: {', '.join(DATASETS)}.")
    return DATASETS[name]


def offline_dirs_for(dataset: Dataset, offline_dirs: Sequence[str]) -> list[str]:
    """``offline_dirs`` without the folders known to hold another dataset under the same file names: Debian's
    ``dataset-fashion-mnist`` must never become a run's MNIST."""
    others = {folder for other in DATASETS.values() if other is not dataset for folder in other.offline_dirs}
    return [folder for folder in offline_dirs if str(folder) not in others]


def pixel_statistics(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of uint8 ``images`` in [0, 1], exact, from a histogram of the 256 grey levels:
    no float copy of the dataset (60,000 images are 47 million pixels)."""
    counts = torch.bincount(images.reshape(-1).cpu(), minlength=256).double()
    levels = torch.arange(256, dtype=torch.float64) / 255
    total = counts.sum()
    mean = (counts * levels).sum() / total
    variance = (counts * (levels - mean) ** 2).sum() / (total - 1)  # torch.std's (unbiased)
    return float(mean), float(variance.sqrt())


def class_indices(dataset: Dataset, names: Sequence[str]) -> list[int]:
    """The labels of the classes ``names`` (any case; a class's alias, or one part of ``"0 - zero"``, ``"T-shirt/top"``
    does too), or one line listing the dataset's classes."""
    classes = dataset.classes
    known: dict[str, int] = {}
    for index, name in enumerate(classes):
        parts = [name, *name.replace(" - ", "/").split("/")]
        known.update({part.strip().lower(): index for part in parts if part.strip()})
    known.update({alias: classes.index(target) for alias, target in dataset.aliases.items()})
    unknown = [name for name in names if name.strip().lower() not in known]
    if unknown:
        raise ConfigError(
            f"{dataset.title} has no class {', '.join(map(repr, unknown))}. Its classes: {', '.join(classes)}."
        )
    return [known[name.strip().lower()] for name in names]


def checkpoint_normalization(checkpoint: dict[str, Any]) -> tuple[float, float] | None:
    """``(mean, std)`` a checkpoint's model was trained with, None for one trained on plain [0, 1] images. A
    checkpoint written before the data module kept them (Fashion-MNIST only then) gets Fashion-MNIST's."""
    data = checkpoint.get("datamodule_hyper_parameters") or {}
    if not data.get("normalize"):
        return None
    for value in checkpoint.values():  # the data module's state, under its class name (Lightning's key)
        if isinstance(value, dict) and isinstance(value.get(STATE_KEY), dict):
            return float(value[STATE_KEY]["mean"]), float(value[STATE_KEY]["std"])
    return FASHION_MNIST_MEAN, FASHION_MNIST_STD


def checkpoint_dataset(checkpoint: dict[str, Any]) -> Dataset:
    """The dataset a checkpoint's model was trained on (Fashion-MNIST for one that does not say)."""
    return get_dataset((checkpoint.get("datamodule_hyper_parameters") or {}).get("dataset") or "fashion_mnist")


def raw_folder(dataset: Dataset, data_dir: str | Path) -> Path:
    """Where torchvision keeps ``dataset``'s four files under ``data_dir``."""
    return Path(data_dir) / dataset.source.__name__ / "raw"
