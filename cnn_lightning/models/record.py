"""One record of each network's facts, read by the tests, the README check, ``summary``, ``report`` and (later)
prediction and export; torchvision keeps the same kind of record as ``Weights.meta``."""

from __future__ import annotations

from dataclasses import dataclass, field

from torchvision.datasets import FashionMNIST

PREPROCESSING = (
    "Fashion-MNIST 28x28 grayscale uint8 images, resized to input_size x input_size (bilinear, antialiased: "
    "equal to PIL's Resize) and divided by 255 into [0, 1]; no normalization, no augmentation"
)


@dataclass(frozen=True)
class BookAccuracy:
    """Test accuracy after 10 epochs in the book's executed notebooks: median and range over 66 builds."""

    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.3f} [{self.low:.3f}–{self.high:.3f}]"


@dataclass(frozen=True)
class ModelRecord:
    """What the book says of one network, and what the project trains it with by default.

    Attributes:
        title: the network as the book names it.
        book_section: section of *Dive into Deep Learning* that defines it.
        config: the bundled config that trains it as the book does.
        input_size: image side it is trained at.
        num_params: trainable parameters for Fashion-MNIST (1 channel in, 10 classes out).
        lr: the book's SGD learning rate.
        batch_size: the book's batch size.
        book_accuracy: the book's 10-epoch test accuracy.
        book_examples_per_sec: the book's training speed on a V100 (median; its timer leaves data loading out).
        categories: the class names, in label order.
        preprocessing: what an image goes through before the network.
        structure: the constructor settings that shape the network; their defaults are the book's, and any other
            value (or another ``input_size`` or ``init``) makes a variant that the book's figures do not describe.
    """

    title: str
    book_section: str
    config: str
    input_size: int
    num_params: int
    lr: float
    batch_size: int
    book_accuracy: BookAccuracy
    book_examples_per_sec: float
    categories: tuple[str, ...] = field(default=tuple(FashionMNIST.classes))
    preprocessing: str = PREPROCESSING
    structure: tuple[str, ...] = ()
