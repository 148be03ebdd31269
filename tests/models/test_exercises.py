"""configs/exercises/: one config per experiment exercise of D2L §7.6 and §8.1–8.7. Each trains through the real
CLI for a few batches, and the network it built is checked to be the variant its exercise asks for."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from torch import nn

from cnn_lightning.commands.config_files import available_configs, resolve_config
from cnn_lightning.commands.fit import make_cli
from cnn_lightning.errors import ConfigError
from cnn_lightning.models import (
    Bottleneck,
    BottleneckDenseLayer,
    ConvBN,
    InceptionV3,
    LiteBatchNorm,
    NiNBlock,
    PreActResidual,
    Residual,
    ResidualInception,
)
from cnn_lightning.models.variants import differences_from_book
from tests.conftest import REPO
from tests.data.idx_files import write_dataset

FOLDER = REPO / "configs" / "exercises"


def types(model: Any, *kinds: type) -> list[str]:
    """The names of the layer types among ``kinds`` the network holds, once each, in order of first appearance."""
    return list(dict.fromkeys(type(m).__name__ for m in model.net.modules() if isinstance(m, kinds)))


def convs(model: Any) -> list[tuple[int, int]]:
    """(output channels, window) of each convolution of the network's ``features``."""
    return [(m.out_channels, m.kernel_size[0]) for m in model.net.features if isinstance(m, nn.Conv2d)]


def linears(model: Any) -> list[int]:
    return [m.out_features for m in model.net.modules() if isinstance(m, nn.Linear)]


def count(model: Any, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.net.modules())


def stage_lengths(model: Any) -> list[int]:
    return [len(getattr(model.net, f"b{i}")) for i in range(2, 6)]


def dense_layers(model: Any) -> list[int]:
    return [len(getattr(model.net, f"block{i}").net) for i in range(1, 5)]


def pointwise(model: Any) -> list[int]:
    """The 1×1 convolutions of each NiN block."""
    blocks = [b for b in model.net.modules() if isinstance(b, NiNBlock)]
    return [sum(isinstance(x, nn.Conv2d) and x.kernel_size == (1, 1) for x in block) for block in blocks]


def norm_kinds(model: Any) -> list[str]:
    return [getattr(m, "mode", "affine" if getattr(m, "affine", True) else "fixed") for m in model.net.modules()
            if isinstance(m, BATCH_NORMS)]  # fmt: skip


POOLS, ACTIVATIONS = (nn.AvgPool2d, nn.MaxPool2d), (nn.Sigmoid, nn.ReLU)
BATCH_NORMS = (nn.modules.batchnorm._BatchNorm, LiteBatchNorm)
ALEXNET_QUARTER = [(24, 11), (64, 5), (96, 3), (96, 3), (64, 3)]

# For each config, a probe of the built model (and of the config file, for what the test's overrides replace) and
# what the exercise needs it to give.
Probe = Callable[[Any, dict[str, Any]], Any]
EXERCISES: dict[str, tuple[Probe, Any]] = {
    "7.6-1.1-max-pooling": (lambda m, c: types(m, *POOLS, *ACTIVATIONS), ["Sigmoid", "MaxPool2d"]),
    "7.6-3-mnist": (
        lambda m, c: (types(m, *POOLS, *ACTIVATIONS), c["data"]["dataset"]),
        (["ReLU", "MaxPool2d"], "mnist"),
    ),
    "7.6-4-activations": (
        lambda m, c: activation_images(c),
        {"layers": ["features.1", "features.4"], "classes": ["Sweater", "Coat"], "num_images": 8},
    ),
    "7.6-5-other-images": (
        lambda m, c: activation_images(c)["images"],
        "generated",
    ),
    "7.6-1.2-relu": (lambda m, c: types(m, *POOLS, *ACTIVATIONS), ["ReLU", "AvgPool2d"]),
    "7.6-2.1-window-size": (lambda m, c: convs(m), [(6, 3), (16, 3)]),
    "7.6-2.2-channels": (lambda m, c: convs(m), [(16, 5), (32, 5)]),
    "7.6-2.3-conv-layers": (lambda m, c: convs(m), [(6, 5), (16, 5), (32, 3)]),
    "7.6-2.4-fc-layers": (lambda m, c: linears(m), [120, 10]),
    "7.6-2.5-learning-rate": (lambda m, c: m.hparams.lr, 0.3),
    "7.6-2.5-kaiming-init": (lambda m, c: differences_from_book(m), ["init kaiming (book: xavier)"]),
    "7.6-2.5-more-epochs": (lambda m, c: c["trainer"]["max_epochs"], 30),
    "8.1-4-alexnet-20-epochs": (lambda m, c: (type(m).__name__, c["trainer"]["max_epochs"]), ("AlexNet", 20)),
    "8.1-4-lenet-20-epochs": (lambda m, c: (type(m).__name__, c["trainer"]["max_epochs"]), ("LeNet", 20)),
    "8.1-5.1-simpler": (lambda m, c: (convs(m), linears(m)), (ALEXNET_QUARTER, [1024, 1024, 10])),
    "8.1-5.2-28px": (lambda m, c: (m.input_size, convs(m)[0], m.net.features[0].stride), (28, (96, 3), (1, 1))),
    "8.1-6-batch-size-32": (lambda m, c: (type(m).__name__, c["data"]["batch_size"]), ("AlexNet", 32)),
    "8.1-6-batch-size-512": (lambda m, c: (type(m).__name__, c["data"]["batch_size"]), ("AlexNet", 512)),
    "8.1-7-lenet-dropout-relu": (lambda m, c: types(m, *ACTIVATIONS, nn.Dropout), ["ReLU", "Dropout"]),
    "8.1-7-lenet-augmentation": (
        lambda m, c: (
            types(m, *ACTIVATIONS, nn.Dropout),
            c["data"]["random_crop_padding"],
            c["data"]["horizontal_flip"],
        ),
        (["ReLU", "Dropout"], 2, True),
    ),
    "8.1-8-overfit": (lambda m, c: (m.hparams.dropout, m.input_size, c["data"]["val_size"]), (0.0, 28, 55_000)),
    "8.2-3-vgg16": (lambda m, c: count(m, nn.Conv2d), 13),
    "8.2-3-vgg19": (lambda m, c: count(m, nn.Conv2d), 16),
    "8.2-4-input-56": (lambda m, c: (m.input_size, count(m, nn.Conv2d)), (56, 8)),
    "8.2-4-input-84-more-convs": (lambda m, c: (m.input_size, count(m, nn.Conv2d)), (84, 10)),
    "8.3-1-one-1x1": (lambda m, c: pointwise(m), [1] * 4),
    "8.3-1-three-1x1": (lambda m, c: pointwise(m), [3] * 4),
    "8.3-2-3x3-instead-of-1x1": (lambda m, c: (pointwise(m), count(m, nn.Conv2d)), ([0] * 4, 12)),
    "8.3-3-fc-head": (lambda m, c: (count(m, nn.AdaptiveAvgPool2d), type(m.net.head[-1]).__name__), (0, "Linear")),
    "8.3-6-nin-vgg16-like": (lambda m, c: count(m, NiNBlock), 2 + 3 + 3 + 1),
    "8.3-6-nin-vgg19-like": (lambda m, c: count(m, NiNBlock), 2 + 4 + 4 + 1),
    "8.4-1.1-batch-norm": (lambda m, c: (count(m, ConvBN), count(m, nn.Conv2d)), (57, 57)),
    "8.4-1.2-inception-v3": (lambda m, c: count(m, InceptionV3), 9),
    "8.4-1.3-label-smoothing": (lambda m, c: m.criterion.label_smoothing, 0.1),
    "8.4-1.4-residual": (lambda m, c: count(m, ResidualInception), 9),
    "8.4-3-28px": (lambda m, c: (m.input_size, m.net.b1[0].kernel_size, len(m.net.b1)), (28, (3, 3), 2)),
    "8.5-2.1-with-bn": (lambda m, c: types(m, *BATCH_NORMS), ["BatchNorm2d", "BatchNorm1d"]),
    "8.5-2.1-without-bn": (lambda m, c: count(m, BATCH_NORMS), 0),
    "8.5-2.2-large-lr": (lambda m, c: m.hparams.lr, 10.0),
    "8.5-3-bn-convs-only": (lambda m, c: types(m, *BATCH_NORMS), ["BatchNorm2d"]),
    "8.5-3-bn-fc-only": (lambda m, c: types(m, *BATCH_NORMS), ["BatchNorm1d"]),
    "8.5-4-center-only": (lambda m, c: norm_kinds(m), ["center"] * 4),
    "8.5-4-scale-only": (lambda m, c: norm_kinds(m), ["scale"] * 4),
    "8.5-5-fixed-gamma-beta": (lambda m, c: norm_kinds(m), ["fixed"] * 4),
    "8.5-6-alexnet-bn-instead-of-dropout": (
        lambda m, c: (types(m, *BATCH_NORMS), {x.p for x in m.net.modules() if isinstance(x, nn.Dropout)}),
        (["BatchNorm2d", "BatchNorm1d"], {0.0}),
    ),
    "8.6-2-resnet34": (lambda m, c: (stage_lengths(m), count(m, Residual)), ([3, 4, 6, 3], 16)),
    "8.6-3-resnet50": (lambda m, c: (stage_lengths(m), count(m, Bottleneck)), ([3, 4, 6, 3], 16)),
    "8.6-4-preactivation": (lambda m, c: (stage_lengths(m), count(m, PreActResidual)), ([2, 2, 2, 2], 8)),
    "8.7-3.1-densenet-224-memory": (
        lambda m, c: (type(m).__name__, m.input_size, m.hparams.memory_efficient, c["trainer"]["precision"]),
        ("DenseNet", 224, False, "32-true"),
    ),
    "8.7-4-densenet121": (
        lambda m, c: (
            dense_layers(m),
            count(m, BottleneckDenseLayer),
            types(m, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d),
        ),
        ([6, 12, 24, 16], 58, ["AdaptiveAvgPool2d"]),
    ),
    "8.7-4-densenet169": (lambda m, c: (dense_layers(m), count(m, BottleneckDenseLayer)), ([6, 12, 32, 32], 82)),
}
# The exercises about training (lr, epochs, batch size, label smoothing) keep the book's network: no variant.
BOOK_NETWORK = {"7.6-2.5-learning-rate", "7.6-2.5-more-epochs", "8.1-4-alexnet-20-epochs", "8.1-4-lenet-20-epochs",
                "8.1-6-batch-size-32", "8.1-6-batch-size-512", "8.4-1.3-label-smoothing", "8.5-2.1-with-bn",
                "8.5-2.2-large-lr", "7.6-4-activations", "7.6-5-other-images"}  # fmt: skip


def activation_images(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of the config's ActivationImages callback."""
    callbacks = config["trainer"]["callbacks"]
    return next(c["init_args"] for c in callbacks if c["class_path"].endswith(".ActivationImages"))


@pytest.fixture(scope="module")
def exercise_data(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision root with the real Fashion-MNIST and a small MNIST the test writes (it cannot be downloaded)."""
    root = tmp_path_factory.mktemp("exercise_data")
    (root / "FashionMNIST").symlink_to(data_dir / "FashionMNIST", target_is_directory=True)
    write_dataset(root / "MNIST" / "raw", train=5300, test=100)  # the default val_size holds out 5,000
    return root


def header(name: str) -> list[str]:
    lines = (FOLDER / f"{name}.yaml").read_text().splitlines()
    return lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]


def test_every_exercise_config_is_checked_and_reachable_by_name() -> None:
    assert {path.stem for path in FOLDER.glob("*.yaml")} == set(EXERCISES)
    assert {f"exercises/{name}.yaml" for name in EXERCISES} <= set(available_configs())


def test_a_mistyped_exercise_name_is_told_the_near_ones_not_all() -> None:
    with pytest.raises(ConfigError) as error:
        resolve_config("exercises/7.6-1.1-max-pool")
    message = str(error.value)
    assert "Did you mean exercises/7.6-1.1-max-pooling" in message
    assert f"exercises/ ({len(EXERCISES)} configs)" in message and "8.6-2-resnet34" not in message
    assert "recipes/resnet.yaml" in message and "\n" not in message


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_each_config_quotes_its_exercise_and_says_what_to_look_at(name: str) -> None:
    section, number = re.fullmatch(r"(\d\.\d)-(\d(?:\.\d)?)-[a-z0-9.-]+", name).groups()
    lines = header(name)
    assert lines[0].startswith(f"# D2L §{section} (") and f'exercise {number}: "' in lines[0], lines[0]
    assert any(line.startswith("# Look at: ") for line in lines)
    assert all(len(line) <= 120 for line in lines)


def train(name: str, data_dir: Path, *overrides: str) -> Any:
    """The CLI's fit over the exercise's config, a few batches of each stage."""
    limits = ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches",
              "1", "--trainer.max_epochs", "1"]  # fmt: skip
    quiet = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
    data = ["--data.batch_size", "4", "--data.eval_batch_size", "4", "--data.data_dir", str(data_dir),
            "--trainer.accelerator", "cpu"]  # fmt: skip
    return make_cli(["fit", "--config", f"exercises/{name}", *limits, *quiet, *data, *overrides])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_each_exercise_trains_the_variant_it_asks_for(
    name: str, exercise_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load((FOLDER / f"{name}.yaml").read_text())
    cli = train(name, exercise_data)
    assert cli.trainer.global_step >= 1 and cli.trainer.state.finished
    # On the dataset it names, and with its peak training memory measured (what 8.1-6 and 8.7-3.1 ask to observe).
    assert cli.datamodule.dataset.name == config["data"].get("dataset", "fashion_mnist")
    assert cli.trainer.callback_metrics["train/peak_memory_mib"] >= 0
    probe, expected = EXERCISES[name]
    assert probe(cli.model, config) == expected
    assert type(cli.model).__name__ == config["model"]["class_path"].rsplit(".", 1)[1]
    # A structure exercise is a variant and says so; a training exercise keeps the book's network.
    assert bool(differences_from_book(cli.model)) == (name not in BOOK_NETWORK)


@pytest.mark.slow
def test_exercises_stack_with_the_book_configs_and_recipes(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """A later config replaces only what it sets: densenet.yaml's memory savings under DenseNet-121's structure,
    and a recipe's training over ResNet-34's."""
    monkeypatch.chdir(tmp_path)
    common = ["--data.data_dir", str(data_dir), "--trainer.accelerator", "cpu", "--trainer.logger", "false"]
    cli = make_cli(["--config", "densenet.yaml", "--config", "exercises/8.7-4-densenet121", *common], run=False)
    assert dense_layers(cli.model) == [6, 12, 24, 16] and cli.model.hparams.memory_efficient == "auto"
    assert "AutoMicroBatch" in [type(callback).__name__ for callback in cli.trainer.callbacks]
    cli = make_cli(["--config", "exercises/8.6-2-resnet34", "--config", "recipes/resnet", *common], run=False)
    assert stage_lengths(cli.model) == [3, 4, 6, 3] and cli.model.hparams.lr_schedule == "cosine"


def test_the_readme_table_lists_every_exercise_config() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Exercises\n") :].split("\n## ", 1)[0]
    listed = re.findall(r"`exercises/([\w.-]+)\.yaml`", section)
    assert sorted(listed) == sorted(EXERCISES)
