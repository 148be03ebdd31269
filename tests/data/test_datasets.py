"""--data.dataset: MNIST and KMNIST beside Fashion-MNIST, through torchvision's classes, from idx files the tests write
(neither can be downloaded here); class names and normalization constants follow the dataset into the checkpoints,
predict, export and load_classifier."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from torchvision.datasets import KMNIST, MNIST

from cnn_lightning import load_classifier
from cnn_lightning.commands.fit import make_cli
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.datasets import DATASETS, class_indices, pixel_statistics
from cnn_lightning.data.fashion_mnist import DEBIAN_DIR
from cnn_lightning.errors import ConfigError, DataNotFoundError
from tests.data.idx_files import write_dataset


def test_mnist_loads_from_its_own_files_never_from_debians_fashion_mnist(tmp_path: Path) -> None:
    written = write_dataset(tmp_path / "MNIST" / "raw", train=300, test=100)
    data = FashionMNISTDataModule(data_dir=str(tmp_path), dataset="mnist", val_size=50, download=False)
    assert DEBIAN_DIR not in data.offline_dirs  # the default list's Fashion-MNIST folder is not MNIST
    data.setup("fit")
    assert data.classes == MNIST.classes and data.num_classes == 10
    assert torch.equal(data.split("test")[0], written["test"][0])
    assert torch.equal(data.split("test")[1], written["test"][1])
    assert len(data.split("train")[1]) == 250 and len(data.split("val")[1]) == 50


def test_kmnist_is_decompressed_from_an_offline_folder(tmp_path: Path) -> None:
    offline = tmp_path / "offline"
    written = write_dataset(offline, train=200, test=60, compress=True, seed=3)
    data = FashionMNISTDataModule(data_dir=str(tmp_path / "data"), dataset="kmnist", offline_dirs=[str(offline)],
                                  val_on_test=True, download=False)  # fmt: skip
    data.setup("fit")
    assert (
        data.classes == KMNIST.classes and (tmp_path / "data" / "KMNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()
    )
    assert torch.equal(data.split("train")[0], written["train"][0])


def test_a_missing_dataset_says_what_was_tried_and_how_to_get_it(tmp_path: Path) -> None:
    data = FashionMNISTDataModule(data_dir=str(tmp_path), dataset="mnist", download=False)
    with pytest.raises(DataNotFoundError) as error:
        data.setup("fit")
    message = str(error.value)
    assert message.startswith("MNIST was not found") and "dataset-fashion-mnist" not in message
    assert f"put the four *-ubyte files in {tmp_path / 'MNIST' / 'raw'}" in message
    assert not (tmp_path / "MNIST" / "raw").exists() or not any((tmp_path / "MNIST" / "raw").iterdir())


def test_an_unknown_dataset_is_one_line_naming_those_offered() -> None:
    with pytest.raises(ConfigError, match=r"--data.dataset cifar10 is not offered\. Use one of: fashion_mnist, mnist"):
        FashionMNISTDataModule(dataset="cifar10")


def test_normalization_constants_are_computed_from_the_training_images(tmp_path: Path) -> None:
    written = write_dataset(tmp_path / "MNIST" / "raw", train=300, test=100)
    pixels = written["train"][0].double() / 255
    mean, std = pixel_statistics(written["train"][0])
    assert mean == pytest.approx(pixels.mean().item(), abs=1e-12) and std == pytest.approx(
        pixels.std().item(), abs=1e-12
    )
    data = FashionMNISTDataModule(data_dir=str(tmp_path), dataset="mnist", normalize=True, download=False, val_size=50)
    data.setup("fit")
    assert (data.augmentation.mean, data.augmentation.std) == (mean, std)  # all 300 training images, not the split
    batch = data.on_after_batch_transfer((written["test"][0][:8], written["test"][1][:8]), 0)[0]
    expected = (written["test"][0][:8].unsqueeze(1).float() / 255 - mean) / std
    assert torch.allclose(batch, expected, atol=1e-6)
    assert data.state_dict() == {"normalization": {"mean": mean, "std": std}}


def test_classes_are_found_by_name_alias_or_part() -> None:
    assert class_indices(DATASETS["fashion_mnist"], ["Sweater", "coat", "T-shirt"]) == [2, 4, 0]
    assert class_indices(DATASETS["mnist"], ["3", "seven", "0 - zero"]) == [3, 7, 0]
    assert class_indices(DATASETS["kmnist"], ["tsu"]) == [3]
    with pytest.raises(ConfigError, match=r"Fashion-MNIST has no class 'Jacket'\. Its classes: T-shirt/top, Trouser"):
        class_indices(DATASETS["fashion_mnist"], ["Coat", "Jacket"])


@pytest.mark.slow
def test_an_mnist_run_names_digits_and_keeps_its_statistics_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """fit on MNIST with --data.normalize: the checkpoint holds MNIST's class names and mean/std; predict's CSV,
    load_classifier and the exported file use them."""
    written = write_dataset(tmp_path / "data" / "MNIST" / "raw", train=300, test=100)
    monkeypatch.chdir(tmp_path)
    common = ["--data.data_dir", "data", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"]
    make_cli(["fit", "--config", "lenet.yaml", "--data.dataset", "mnist", "--data.normalize", "true",
              "--data.val_size", "50", "--data.batch_size", "32", "--trainer.max_epochs", "1", *common])  # fmt: skip
    run = tmp_path / "lightning_logs" / "lenet" / "version_0"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    statistics = pixel_statistics(written["train"][0])
    assert checkpoint["categories"] == MNIST.classes
    assert checkpoint["FashionMNISTDataModule"]["normalization"] == dict(zip(("mean", "std"), statistics, strict=True))
    make_cli(["predict", "--ckpt_path", str(run), *common])
    with next((run / "predict").glob("predictions*.csv")).open() as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0])[4:] == MNIST.classes and rows[0]["label"] == "0 - zero" and len(rows) == 100
    classifier = load_classifier(run)
    assert classifier.categories == MNIST.classes and classifier.normalized == statistics
    best = classifier(written["test"][0][:5])
    assert [p.prediction for p in best] == [rows[i]["prediction"] for i in range(5)]
    capsys.readouterr()
    make_cli(["export", "--ckpt_path", str(run), "--format", "torchscript", *common])
    exported = torch.jit.load(str(next((run / "export").glob("*.pt"))), _extra_files=(extra := {"metadata.json": ""}))
    metadata = json.loads(extra["metadata.json"])
    assert json.loads(metadata["class_names"]) == MNIST.classes
    assert f"(x - {statistics[0]:.6g}) / {statistics[1]:.6g}" in metadata["preprocessing_in_graph"]
    probabilities = exported(written["test"][0][:5].unsqueeze(1))
    assert torch.allclose(probabilities, classifier.probabilities(written["test"][0][:5]), atol=1e-5)
