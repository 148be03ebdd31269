"""Fashion-MNIST for the book's classifiers: its files, the data module, resident batches resized on the device,
augmentation, and a user's own pictures given the dataset's look."""

from cnn_lightning.data.augmentation import FASHION_MNIST_MEAN, FASHION_MNIST_STD, TrainAugmentation, normalize
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.fashion_mnist import CLASSES, DEBIAN_DIR, RAW_FILES, load_split, prepare_raw_files
from cnn_lightning.data.own_images import Invert, fashion_mnist_look, find_files, load_images
from cnn_lightning.data.resident_batches import TensorBatchLoader, resize_batch

__all__ = [
    "CLASSES",
    "DEBIAN_DIR",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "RAW_FILES",
    "FashionMNISTDataModule",
    "Invert",
    "TensorBatchLoader",
    "TrainAugmentation",
    "fashion_mnist_look",
    "find_files",
    "load_images",
    "load_split",
    "normalize",
    "prepare_raw_files",
    "resize_batch",
]
