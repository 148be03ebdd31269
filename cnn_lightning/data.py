"""Fashion-MNIST as one resident uint8 tensor, batched and resized on the training device.

The book's loader resizes each image with PIL inside worker processes; here the 70k images (~55 MB) stay in
one tensor, a batch is a single index operation, and ``transforms.v2`` resizes the whole batch where the model runs.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DistributedSampler
from torchvision.datasets import FashionMNIST
from torchvision.transforms.v2 import functional as TF

from cnn_lightning.augmentation import TrainAugmentation
from cnn_lightning.errors import DataCorruptError, DataNotFoundError, require_positive
from cnn_lightning.images import Invert, find_files, load_images
from cnn_lightning.lightning_contract import completed_train_batches

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
RAW_FILES = {
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}
CLASSES: list[str] = list(FashionMNIST.classes)


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[B, H, W]`` → float ``[B, 1, size, size]`` in [0, 1], equal to PIL ``Resize`` + ``ToTensor``.

    Resizing the uint8 batch (antialiased, as PIL does) before scaling reproduces the book's pipeline exactly;
    scaling first would differ by up to 1/255 (tests/test_data.py asserts bit-identical results).
    """
    x = images.unsqueeze(1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = TF.resize(x, [size, size], antialias=True)
    # Division, as ToTensor does, rather than v2.to_dtype's multiplication by 1/255: bit-identical to the book.
    return x.to(torch.float32).div_(255)


def _link_new(source: Path, target: Path) -> None:
    """Place ``source`` at ``target`` unless ``target`` exists: a user's file is never replaced."""
    try:
        os.link(source, target)
    except FileExistsError:
        pass
    finally:
        source.unlink(missing_ok=True)


def prepare_raw_files(data_dir: str | Path, offline_dirs: Sequence[str | Path], download: bool) -> Path:
    """Make ``data_dir/FashionMNIST/raw`` hold the four decompressed files, offline first; return that folder.

    Order: files already in ``data_dir``; gzip files in ``offline_dirs`` (Debian's ``dataset-fashion-mnist``
    re-compresses them, so torchvision's .gz checksums do not apply; the shapes are checked on load instead);
    torchvision's download. Existing files are never overwritten.
    """
    raw = Path(data_dir) / FashionMNIST.__name__ / "raw"
    missing = [name for name in RAW_FILES if not (raw / name).is_file()]
    if not missing:
        return raw
    tried = [f"{raw}: missing {', '.join(missing)}"]
    for folder in map(Path, offline_dirs):
        sources = {name: folder / f"{name}.gz" for name in missing}
        absent = [str(path) for path in sources.values() if not path.is_file()]
        if absent:
            tried.append(f"{folder}: no {', '.join(Path(p).name for p in absent)}")
            continue
        _writable_dir(raw)
        for name, source in sources.items():
            with gzip.open(source, "rb") as fin, tempfile.NamedTemporaryFile(dir=raw, delete=False) as tmp:
                while chunk := fin.read(1 << 20):
                    tmp.write(chunk)
            _link_new(Path(tmp.name), raw / name)
        return raw
    if download:
        _writable_dir(raw)
        try:
            FashionMNIST(str(data_dir), train=True, download=True)
            FashionMNIST(str(data_dir), train=False, download=True)
            return raw
        except Exception as error:  # torchvision raises RuntimeError or URLError variants
            tried.append(f"download from torchvision's mirrors: {str(error).splitlines()[-1].strip()}")
    else:
        tried.append("download: disabled (data.download=false)")
    raise DataNotFoundError(
        "Fashion-MNIST was not found. Tried:\n  - "
        + "\n  - ".join(tried)
        + "\nFix: install Debian's copy (`sudo apt-get install dataset-fashion-mnist`, files in "
        f"{DEBIAN_DIR}), or put the four *-ubyte files in {raw}, or allow network access for the download."
    )


def _writable_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataNotFoundError(
            f"Cannot create {folder} for Fashion-MNIST: {error.strerror}. Choose a writable --data.data_dir."
        ) from None
    if not os.access(folder, os.W_OK):
        raise DataNotFoundError(f"{folder} is not writable. Choose a writable --data.data_dir.")


def load_split(raw: Path, *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[N, 28, 28]`` uint8 and labels ``[N]`` int64 through torchvision's reader, shapes verified."""
    prefix = "train" if train else "t10k"
    for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
        if not os.access(raw / name, os.R_OK):
            raise DataCorruptError(f"{raw / name} is not readable. Fix its permissions or choose another data_dir.")
    try:
        dataset = FashionMNIST(str(raw.parent.parent), train=train, download=False)
        images, labels = dataset.data, dataset.targets
    except Exception as error:
        raise DataCorruptError(
            f"A Fashion-MNIST file in {raw} is truncated or corrupt ({error}). Delete the {prefix}-* files "
            "there and run again to restore them from the offline copy or the download."
        ) from None
    for name, tensor in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        if tuple(tensor.shape) != RAW_FILES[name]:
            raise DataCorruptError(
                f"{raw / name} holds shape {tuple(tensor.shape)}, expected {RAW_FILES[name]}: the file is not "
                "Fashion-MNIST or is damaged. Delete it and run again to restore it."
            )
    return images, labels.long()


class TensorBatchLoader:
    """Batches ``(uint8 images, labels)`` by slicing resident tensors; no per-sample Python.

    The index order comes from ``torch.utils.data.DistributedSampler``: seeded, reshuffled per epoch through
    ``set_epoch`` (Lightning calls it on ``loader.sampler``), and a disjoint shard per rank. ``state_dict``
    records the epoch and the batches produced so a mid-epoch resume continues the same order. Under a
    Trainer, ``position_fn`` says how many batches of the epoch the loop has completed: Lightning fetches one
    batch ahead, so the iterator's own count would skip a batch on resume.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        position_fn: Callable[[], int] | None = None,
        with_index: bool = False,
    ) -> None:
        self.position_fn, self.with_index = position_fn, with_index
        self.images, self.labels, self.batch_size, self.drop_last = images, labels, batch_size, drop_last
        self.sampler = DistributedSampler(
            range(len(labels)), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.batch_sampler = None  # batches come from slicing, not from a torch BatchSampler
        self._resume_at = 0
        self._produced = 0

    def __len__(self) -> int:
        per_rank = self.sampler.num_samples
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.tensor(list(self.sampler), device=self.images.device)
        start = self.position_fn() if self.position_fn is not None else self._resume_at
        self._resume_at = 0
        for batch in range(start, len(self)):
            self._produced = batch + 1
            index = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            yield (
                (self.images[index], self.labels[index], index)
                if self.with_index
                else (
                    self.images[index],
                    self.labels[index],
                )
            )
        self._produced = 0

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.sampler.epoch, "batches_produced": self._produced}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.set_epoch(state["epoch"])
        self._resume_at = state["batches_produced"]


class FashionMNISTDataModule(L.LightningDataModule):
    """Fashion-MNIST (Xiao et al. 2017) for the book's classifiers: a seeded validation split of the 60k
    training images, the official 10k test set, images resized per batch on the training device.

    Args:
        data_dir: torchvision root; files live in ``data_dir/FashionMNIST/raw``.
        batch_size: images per training step on each device.
        resize: side length fed to the model; the CLI sets it from the model's ``input_size``.
        val_size: training images held out for validation (ignored with ``val_on_test``).
        val_on_test: train on all 60k and validate on the test set every epoch, as the book does.
        eval_batch_size: batch size for validation/test/predict; defaults to ``batch_size`` as in the book.
        seed: seeds the split and the per-epoch shuffle.
        predict_path: images to classify with ``predict`` instead of the test set: a file, a folder (recursively)
            or a glob; they get the Fashion-MNIST look first (:mod:`cnn_lightning.images`).
        invert: make dark-on-light pictures light-on-dark: ``auto`` decides per image from border and centre.
        offline_dirs: folders holding the four ``*.gz`` files, searched before downloading.
        download: allow torchvision's download when no offline copy is found.
        random_crop_padding, horizontal_flip, random_erasing, normalize: augmentation of training batches on
            their device, each image its own draw, and standardization of every batch (off by default; see
            :class:`cnn_lightning.augmentation.TrainAugmentation`).
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
    ) -> None:
        super().__init__()
        require_positive(batch_size, name="The batch size", flag="--data.batch_size")
        require_positive(eval_batch_size, name="The evaluation batch size", flag="--data.eval_batch_size")
        require_positive(resize, name="The resize", flag="--model.init_args.input_size")
        self.save_hyperparameters()
        self.data_dir, self.batch_size, self.resize = data_dir, batch_size, resize
        self.val_size, self.val_on_test, self.seed = val_size, val_on_test, seed
        self.eval_batch_size = eval_batch_size
        self.offline_dirs, self.download = list(offline_dirs), download
        self.predict_path, self.invert = predict_path, invert
        if predict_path:
            find_files(predict_path)  # a missing path or an empty folder is refused before anything runs
        self.predict_sources: list[str] = []
        self.classes = CLASSES
        self.num_classes = len(CLASSES)
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
            prepare_raw_files(self.data_dir, self.offline_dirs, self.download)

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict" and self.predict_path:
            images, self.predict_sources = load_images(self.predict_path, self.invert)
            self._splits["predict"] = (images, torch.full((len(images),), -1, dtype=torch.long))
            return
        if self._splits.keys() - {"predict"}:
            return
        raw = prepare_raw_files(self.data_dir, self.offline_dirs, self.download)
        images, labels = load_split(raw, train=True)
        test = load_split(raw, train=False)
        if self.val_on_test:
            self._splits = {"train": (images, labels), "val": test, "test": test}
            return
        if not 0 < self.val_size < len(labels):
            raise DataCorruptError(f"val_size must be between 1 and {len(labels) - 1}, got {self.val_size}.")
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))
        train, val = order[self.val_size :], order[: self.val_size]
        self._splits = {"train": (images[train], labels[train]), "val": (images[val], labels[val]), "test": test}

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
        if isinstance(batch, torch.Tensor):  # the model's example_input_array, already float and sized
            return batch
        images, labels, *index = batch
        images = resize_batch(images, self.resize)
        training = self.trainer is not None and self.trainer.training
        images = self.augmentation(images) if training else self.augmentation.evaluate(images)
        return (images, labels, *index)
