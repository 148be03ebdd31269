"""Fashion-MNIST (or MNIST, KMNIST) for the book's classifiers: the datasets offered, their files, the data module,
resident batches resized on the device, augmentation, and a user's own pictures given the dataset's look."""

from cnn_lightning.data.augmentation import FASHION_MNIST_MEAN, FASHION_MNIST_STD, TrainAugmentation, normalize
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.datasets import DATASETS, Dataset, get_dataset
from cnn_lightning.data.fashion_mnist import CLASSES, DEBIAN_DIR, RAW_FILES, load_split, prepare_raw_files
from cnn_lightning.data.own_images import Invert, fashion_mnist_look, find_files, load_images
from cnn_lightning.data.resident_batches import TensorBatchLoader, resize_batch

__all__ = [
    "CLASSES",
    "DATASETS",
    "DEBIAN_DIR",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "RAW_FILES",
    "Dataset",
    "FashionMNISTDataModule",
    "Invert",
    "TensorBatchLoader",
    "TrainAugmentation",
    "fashion_mnist_look",
    "find_files",
    "get_dataset",
    "load_images",
    "load_split",
    "normalize",
    "prepare_raw_files",
    "resize_batch",
]
