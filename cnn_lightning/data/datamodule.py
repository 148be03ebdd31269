"""The Fashion-MNIST data module (or MNIST's, KMNIST's: ``dataset``): the 70k images (~55 MB) as one resident uint8
tensor on the training device, a seeded validation split, batches resized (and augmented, where asked) on the
device."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from cnn_lightning.data.augmentation import TrainAugmentation
from cnn_lightning.data.datasets import STATE_KEY, DatasetName, get_dataset, offline_dirs_for, pixel_statistics
from cnn_lightning.data.fashion_mnist import DEBIAN_DIR, load_split, prepare_raw_files
from cnn_lightning.data.own_images import Invert, find_files, load_images
from cnn_lightning.data.resident_batches import TensorBatchLoader, resize_batch
from cnn_lightning.errors import DataCorruptError, require_positive
from cnn_lightning.lightning_contract import completed_train_batches

INPUT_GRID_IMAGES = 64  # training images the dashboard's input grid shows (Dashboards' num_images by default)


class FashionMNISTDataModule(L.LightningDataModule):
    """Fashion-MNIST (Xiao et al. 2017) for the book's classifiers: a seeded validation split of the 60k
    training images, the official 10k test set, images resized per batch on the training device.

    Args:
        data_dir: torchvision root; files live in ``data_dir/FashionMNIST/raw`` (``MNIST/raw``, ``KMNIST/raw``).
        dataset: ``fashion_mnist`` (the book's), ``mnist`` or ``kmnist`` (data/datasets.py): its class names go
            into the checkpoints, and ``normalize`` uses its own mean and std, computed from its training images.
        batch_size: images per training step on each device.
        resize: side length fed to the model; the CLI sets it from the model's ``input_size``.
        val_size: training images held out for validation (ignored with ``val_on_test``).
        val_on_test: train on all 60k and validate on the test set every epoch, as the book does.
        eval_batch_size: batch size for validation/test/predict; defaults to ``batch_size`` as in the book.
        seed: seeds the split and the per-epoch shuffle.
        predict_path: images to classify with ``predict`` instead of the test set: a file, a folder (recursively)
            or a glob; they get the Fashion-MNIST look first (:mod:`cnn_lightning.data.own_images`).
        invert: make dark-on-light pictures light-on-dark: ``auto`` decides per image from border and centre.
        offline_dirs: folders holding the four ``*.gz`` files, searched before downloading (Debian's holds
            Fashion-MNIST only, and is skipped for another dataset).
        download: allow torchvision's download when no offline copy is found.
        random_crop_padding, horizontal_flip, random_erasing, normalize: augmentation of training batches on
            their device, each image its own draw, and standardization of every batch (off by default; see
            :class:`cnn_lightning.data.augmentation.TrainAugmentation`).
    """

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 256,
        resize: int = 28,
        val_size: int = 5000,
        val_on_test: bool = False,
        eval_batch_size: int | None = None,
        seed: int = 0,
        predict_path: str | None = None,
        invert: Invert = "auto",
        offline_dirs: list[str] = [DEBIAN_DIR],  # noqa: B006 - shown as a plain list by the CLI
        download: bool = True,
        random_crop_padding: int = 0,
        horizontal_flip: bool = False,
        random_erasing: float = 0.0,
        normalize: bool = False,
        dataset: DatasetName = "fashion_mnist",
    ) -> None:
        super().__init__()
        require_positive(batch_size, name="The batch size", flag="--data.batch_size")
        require_positive(eval_batch_size, name="The evaluation batch size", flag="--data.eval_batch_size")
        require_positive(resize, name="The resize", flag="--model.init_args.input_size")
        self.dataset = get_dataset(dataset)
        self.save_hyperparameters()
        self.data_dir, self.batch_size, self.resize = data_dir, batch_size, resize
        self.val_size, self.val_on_test, self.seed = val_size, val_on_test, seed
        self.eval_batch_size = eval_batch_size
        self.offline_dirs, self.download = offline_dirs_for(self.dataset, offline_dirs), download
        self.predict_path, self.invert = predict_path, invert
        if predict_path:
            find_files(predict_path)  # a missing path or an empty folder is refused before anything runs
        self.predict_sources: list[str] = []
        self.classes = self.dataset.classes
        self.num_classes = len(self.classes)
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.augmentation = TrainAugmentation(
            size=resize,
            crop_padding=random_crop_padding,
            horizontal_flip=horizontal_flip,
            random_erasing=random_erasing,
            normalize=normalize,
        )

    def prepare_data(self) -> None:
        if not (self.predict_path and self.trainer is not None and self.trainer.predicting):
            prepare_raw_files(self.data_dir, self.offline_dirs, self.download, self.dataset.source)

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict" and self.predict_path:
            images, self.predict_sources = load_images(self.predict_path, self.invert)
            self._splits["predict"] = (images, torch.full((len(images),), -1, dtype=torch.long))
            return
        if self._splits.keys() - {"predict"}:
            return
        raw = prepare_raw_files(self.data_dir, self.offline_dirs, self.download, self.dataset.source)
        images, labels = load_split(raw, train=True, source=self.dataset.source)
        test = load_split(raw, train=False, source=self.dataset.source)
        if self.augmentation.normalize:  # the dataset's own statistics, over all its training images
            self.augmentation.set_statistics(*pixel_statistics(images))
        if self.val_on_test:
            self._splits = {"train": (images, labels), "val": test, "test": test}
            return
        if not 0 < self.val_size < len(labels):
            raise DataCorruptError(f"val_size must be between 1 and {len(labels) - 1}, got {self.val_size}.")
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))
        train, val = order[self.val_size :], order[: self.val_size]
        self._splits = {"train": (images[train], labels[train]), "val": (images[val], labels[val]), "test": test}

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data: the statistics the model's inputs were normalized with."""
        augmentation = self.augmentation
        return {STATE_KEY: {"mean": augmentation.mean, "std": augmentation.std}} if augmentation.normalize else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """The trained model's statistics, also where this process computed none (``predict`` on own pictures)."""
        if saved := state_dict.get(STATE_KEY):
            self.augmentation.set_statistics(saved["mean"], saved["std"])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The uint8 images and labels of ``train``, ``val`` or ``test`` (call ``setup`` first)."""
        return self._splits[name]

    def _loader(self, name: str, *, train: bool, with_index: bool = False) -> TensorBatchLoader:
        images, labels = self._splits[name]
        rank, world_size, position_fn = 0, 1, None
        if self.trainer is not None:
            device = self.trainer.strategy.root_device
            images, labels = images.to(device), labels.to(device)
            rank, world_size = self.trainer.global_rank, self.trainer.world_size
            if train:
                position_fn = self._completed_batches
        return TensorBatchLoader(
            images,
            labels,
            batch_size=self.batch_size if train else (self.eval_batch_size or self.batch_size),
            shuffle=train,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            position_fn=position_fn,
            with_index=with_index,
        )

    def _completed_batches(self) -> int:
        """Batches of the current epoch the fit loop has finished: 0 on a fresh epoch, more on a resume."""
        return completed_train_batches(self.trainer)

    def train_dataloader(self) -> TensorBatchLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> TensorBatchLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> TensorBatchLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> TensorBatchLoader:
        """The images of ``predict_path``, or the test set; batches carry each image's index into
        ``predict_sources`` (a file path, or ``test:<index>``)."""
        if "predict" not in self._splits:
            self.predict_sources = [f"test:{index}" for index in range(len(self._splits["test"][1]))]
            self._splits["predict"] = self._splits["test"]
        return self._loader("predict", train=False, with_index=True)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """A batch as the model takes it, on its device: resized, and augmented while training."""
        if isinstance(batch, torch.Tensor):  # the model's example_input_array, already float and sized
            return batch
        images, labels, *index = batch
        training = self.trainer is not None and self.trainer.training
        return (self.model_images(images, training=training), labels, *index)

    def model_images(self, images: torch.Tensor, *, size: int | None = None, training: bool = False) -> torch.Tensor:
        """uint8 images (on the model's device) as the model takes them: resized (to ``size``, default this data
        module's), augmented while ``training``, else standardized where this data module standardizes."""
        images = resize_batch(images, size or self.resize)
        return self.augmentation(images) if training else self.augmentation.evaluate(images)
