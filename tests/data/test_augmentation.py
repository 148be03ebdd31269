"""Augmentation on the device: every image its own draw, evaluation untouched, the dataset's statistics, the cost."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnn_lightning.commands.fit import make_cli
from cnn_lightning.data.augmentation import FASHION_MNIST_MEAN, FASHION_MNIST_STD, TrainAugmentation, normalize
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.datasets import pixel_statistics
from cnn_lightning.data.resident_batches import resize_batch
from cnn_lightning.errors import ConfigError
from cnn_lightning.models import LeNetBN

RECIPE_DATA = {"random_crop_padding": 4, "horizontal_flip": True, "random_erasing": 0.5, "normalize": True}


@pytest.fixture(scope="module")
def datamodule(data_dir: Path) -> FashionMNISTDataModule:
    module = FashionMNISTDataModule(data_dir=str(data_dir), **RECIPE_DATA)
    module.setup("fit")
    return module


def test_every_image_of_a_batch_gets_its_own_crop_and_flip(datamodule: FashionMNISTDataModule) -> None:
    torch.manual_seed(0)
    image = resize_batch(datamodule.split("train")[0][:1], 28)
    batch = image.expand(64, -1, -1, -1).contiguous()  # one picture, 64 times
    augmentation = TrainAugmentation(size=28, crop_padding=4, horizontal_flip=True)
    out = augmentation(batch)
    distinct = {tuple(row.flatten().tolist()) for row in out}
    assert len(distinct) > 40, "per-batch parameters would give one distinct image (or two, with the flip)"
    plain = [_matches_shifted(row, image[0]) for row in out]
    flipped = [_matches_shifted(row, image[0].flip(-1)) for row in out]
    assert all(p or f for p, f in zip(plain, flipped, strict=True)), "each output is a shifted, maybe flipped, copy"
    assert 0 < sum(flipped) < 64, "some images flipped, not all and not none"


def _matches_shifted(candidate: torch.Tensor, original: torch.Tensor, padding: int = 4) -> bool:
    """Whether ``candidate`` is ``original`` shifted by at most ``padding`` pixels with zero fill."""
    padded = torch.nn.functional.pad(original, [padding] * 4)
    size = original.shape[-1]
    return any(
        torch.equal(padded[:, dy : dy + size, dx : dx + size], candidate)
        for dy in range(2 * padding + 1)
        for dx in range(2 * padding + 1)
    )


def test_crop_padding_scales_with_the_input_size() -> None:
    assert TrainAugmentation(size=96, crop_padding=4).geometric[0].flags["padding"] == 14  # 4 px of 28 → 14 of 96


@pytest.mark.parametrize(
    ("setting", "fix"),
    [({"crop_padding": -1}, "--data.random_crop_padding"), ({"random_erasing": 1.5}, "--data.random_erasing")],
)
def test_bad_augmentation_settings_name_the_flag(setting: dict, fix: str) -> None:
    with pytest.raises(ConfigError, match=fix):
        TrainAugmentation(size=28, **setting)


def test_normalization_constants_are_the_training_set_statistics(datamodule: FashionMNISTDataModule) -> None:
    images = torch.cat([datamodule.split("train")[0], datamodule.split("val")[0]]).double() / 255
    assert len(images) == 60000
    assert images.mean().item() == pytest.approx(FASHION_MNIST_MEAN, abs=1e-4)
    assert images.std().item() == pytest.approx(FASHION_MNIST_STD, abs=1e-4)


class RawBatches(FashionMNISTDataModule):
    """The real data module, also keeping each batch as it was before the device-side preprocessing."""

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        self.raw = batch[0].clone()
        return batch


class Capture(L.Callback):
    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"train": [], "val": []}

    def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, batch_idx: int) -> None:
        self.seen["train"].append((trainer.datamodule.raw, batch[0].clone()))

    def on_validation_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, *args: Any) -> None:
        self.seen["val"].append((trainer.datamodule.raw, batch[0].clone()))


def test_training_batches_are_augmented_and_evaluation_batches_only_normalized(data_dir: Path, tmp_path: Path) -> None:
    capture = Capture()
    trainer = L.Trainer(
        max_epochs=1, limit_train_batches=3, limit_val_batches=2, num_sanity_val_steps=0, accelerator="cpu",
        logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[capture],
        default_root_dir=tmp_path,
    )  # fmt: skip
    # One step per batch: each batch passes on_after_batch_transfer prepared (a chunk passes it as stored)
    trainer.fit(LeNetBN(), datamodule=(data := RawBatches(data_dir=str(data_dir), batch_size=64, **RECIPE_DATA)))
    statistics = data.augmentation.mean, data.augmentation.std  # computed from the training images in setup
    assert statistics == pytest.approx((FASHION_MNIST_MEAN, FASHION_MNIST_STD), abs=1e-4)
    for raw, seen in capture.seen["val"]:
        assert torch.equal(seen, normalize(resize_batch(raw, 28), *statistics))  # the plain pipeline, standardized
    for raw, seen in capture.seen["train"]:
        plain = normalize(resize_batch(raw, 28), *statistics)
        changed = (seen != plain).flatten(1).any(dim=1).float().mean().item()
        assert changed > 0.5, f"only {changed:.0%} of the training images were augmented"
    assert len(capture.seen["train"]) == 3 and len(capture.seen["val"]) == 2


def test_book_configs_keep_the_plain_pipeline(data_dir: Path) -> None:
    """Off by default: the book's batches are resize + /255, nothing else, in training too."""
    module = FashionMNISTDataModule(data_dir=str(data_dir))
    assert not module.augmentation.is_random and not module.augmentation.normalize
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    assert torch.equal(module.augmentation(resize_batch(images, 28)), resize_batch(images, 28))


def test_the_input_grid_says_it_is_augmented(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_cli(["fit", "--config", "lenet_bn.yaml", "--data.horizontal_flip", "true", "--data.random_crop_padding", "2",
              "--trainer.max_steps", "1", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
              "--trainer.num_sanity_val_steps", "0", "--data.data_dir", str(data_dir),
              "--trainer.accelerator", "cpu"])  # fmt: skip
    events = EventAccumulator(str(next((tmp_path / "lightning_logs").glob("*/version_*"))), size_guidance={"images": 0})
    events.Reload()
    assert "views/inputs_train_batch_augmented" in events.Tags()["images"]
    assert "views/inputs_train_batch" not in events.Tags()["images"]


def _median_ms(function: Any, repeats: int = 15) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def test_augmentation_costs_little_beside_a_training_step() -> None:
    """Crop, flip, erasing and normalization of a batch of 256 against one LeNetBN training step on the same
    batch, medians in the same process (benchmarks/augmentation.py measures whole-fit examples/sec)."""
    torch.manual_seed(0)
    images, labels = torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,))
    augmentation = TrainAugmentation(size=28, crop_padding=4, horizontal_flip=True, random_erasing=0.5, normalize=True)
    model = LeNetBN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def step() -> None:
        optimizer.zero_grad()
        model.criterion(model(images), labels).backward()
        optimizer.step()

    augment_ms, step_ms = _median_ms(lambda: augmentation(images)), _median_ms(step)
    assert augment_ms < 0.5 * step_ms, f"augmentation {augment_ms:.1f} ms against a {step_ms:.1f} ms step"


def test_a_normalized_run_is_normalized_wherever_it_is_used(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_classifier and the exported file standardize inputs as training did (the checkpoint says so)."""
    from cnn_lightning import load_classifier
    from cnn_lightning.commands.export import ExportedClassifier

    monkeypatch.chdir(tmp_path)
    cli = make_cli(["fit", "--config", "lenet_bn.yaml", "--data.normalize", "true", "--trainer.max_steps", "2",
                    "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
                    "--trainer.logger", "false", "--data.data_dir", str(data_dir),
                    "--trainer.accelerator", "cpu"])  # fmt: skip
    classifier = load_classifier(cli.trainer.checkpoint_callback.last_model_path)
    images = cli.datamodule.split("test")[0][:16]
    model = classifier.model
    # The statistics of all 60,000 training images, computed by the data module, not the rounded constants.
    statistics = pixel_statistics(torch.cat([cli.datamodule.split("train")[0], cli.datamodule.split("val")[0]]))
    assert classifier.normalized == statistics
    assert statistics == pytest.approx((FASHION_MNIST_MEAN, FASHION_MNIST_STD), abs=1e-4)
    with torch.no_grad():
        expected = model(normalize(resize_batch(images, 28), *statistics)).softmax(dim=1)
        exported = ExportedClassifier(model.net, 28, normalized=statistics).eval()(images.unsqueeze(1))
    assert torch.allclose(classifier.probabilities(images), expected, atol=1e-6)
    assert torch.allclose(exported, expected, atol=1e-5)
