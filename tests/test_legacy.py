"""A run saved by an earlier version keeps working: every class path it can name still resolves, and the run kept
in ``tests/fixtures/densenet_run_0.1.0`` resumes, tests, predicts and exports (fixtures/README.md says how it was
made)."""

from __future__ import annotations

import csv
import importlib
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from cnn_lightning import load_classifier
from cnn_lightning.__main__ import main
from cnn_lightning.runs import load_checkpoint
from tests.conftest import run_cli

FIXTURE = Path(__file__).parent / "fixtures" / "densenet_run_0.1.0"

# Every class a config, a saved config.yaml or a checkpoint's hyperparameters could name in version 0.1.0, with the
# module paths it had then (callbacks, the checkpoint plugin, the profiler, the Trainer, the data and the models).
CLASS_PATHS_0_1_0 = [
    "cnn_lightning.batching.AutoMicroBatch",
    "cnn_lightning.batching.EffectiveBatchSize",
    "cnn_lightning.callbacks.ExamplesPerSecond",
    "cnn_lightning.callbacks.LearningRateLogger",
    "cnn_lightning.callbacks.ResumedEpochProgress",
    "cnn_lightning.classifier.Classifier",
    "cnn_lightning.commands.Trainer",
    "cnn_lightning.dashboards.Dashboards",
    "cnn_lightning.data.FashionMNISTDataModule",
    "cnn_lightning.prediction.PredictionCSV",
    "cnn_lightning.reliability.AtomicCheckpointIO",
    "cnn_lightning.reliability.GracefulInterrupt",
    "cnn_lightning.reliability.RunCheckpoint",
    "cnn_lightning.search.ReportToStudy",
    "cnn_lightning.step_overhead.NoOpProfiler",
    "cnn_lightning.step_overhead.SteadyProgressBar",
    "cnn_lightning.scratch.BatchNorm",
    "cnn_lightning.scratch.Conv2D",
    *(f"cnn_lightning.models.{name}" for name in ("LeNet", "LeNetBN", "AlexNet", "VGG", "NiN", "GoogLeNet")),
    *(f"cnn_lightning.models.{name}" for name in ("ResNet", "DenseNet")),
    "cnn_lightning.models.densenet.DenseNet",
    "cnn_lightning.models.resnet.ResNet",
    "cnn_lightning.models.lenet.LeNetBN",
]
# Functions of 0.1.0's Python API and benchmarks that users call by their module path.
FUNCTION_PATHS_0_1_0 = [
    "cnn_lightning.inference.load_classifier",
    "cnn_lightning.data.resize_batch",
    "cnn_lightning.data.prepare_raw_files",
    "cnn_lightning.augmentation.normalize",
    "cnn_lightning.images.load_images",
    "cnn_lightning.summary.layer_table",
    "cnn_lightning.report.report",
    "cnn_lightning.cli.main",
    "cnn_lightning.shapes.training_flops",
    "cnn_lightning.host_memory.retain_freed_memory",
    "cnn_lightning.scratch.corr2d",
]


@pytest.mark.parametrize("path", CLASS_PATHS_0_1_0 + FUNCTION_PATHS_0_1_0)
def test_paths_of_version_0_1_0_resolve(path: str) -> None:
    module, _, name = path.rpartition(".")
    found = getattr(importlib.import_module(module), name)
    assert callable(found)
    assert found.__name__ == name


def test_fixture_names_the_old_paths() -> None:
    """The fixture is what it claims: its config names the callback and plugin by their 0.1.0 paths."""
    config = yaml.safe_load((FIXTURE / "config.yaml").read_text())
    assert config["trainer"]["callbacks"][0]["class_path"] == "cnn_lightning.batching.AutoMicroBatch"
    assert config["trainer"]["plugins"][0]["class_path"] == "cnn_lightning.reliability.AtomicCheckpointIO"
    assert load_checkpoint(FIXTURE / "checkpoints" / "last.ckpt")["global_step"] == 4


@pytest.fixture
def legacy_run(tmp_path: Path) -> Path:
    """A copy of the fixture as ``lightning_logs/version_0`` of a fresh working directory (the original stays)."""
    shutil.copytree(FIXTURE, tmp_path / "lightning_logs" / "version_0")
    return tmp_path


@pytest.mark.slow  # whole CLI processes or fits, about 10 s: the full suite runs it
def test_saved_run_resumes_in_place(legacy_run: Path, data_dir: Path) -> None:
    run = legacy_run / "lightning_logs" / "version_0"
    result = run_cli(
        "fit", "--ckpt_path", "lightning_logs/version_0", "--trainer.max_steps", "6", "--data.data_dir", str(data_dir),
        cwd=legacy_run,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "AutoMicroBatch: micro-batch 16" in result.stdout
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 6
    assert (run / "config.resume-1.yaml").is_file()
    assert not (legacy_run / "lightning_logs" / "version_1").exists()


def check_test_predict_export(workdir: Path, data_dir: Path) -> Path:
    """``test``, ``predict`` (one batch of 16) and ``export`` on the run in ``workdir``, each as a user runs it."""
    run = workdir / "lightning_logs" / "version_0"
    data = ["--data.data_dir", str(data_dir)]
    tested = run_cli("test", "--ckpt_path", str(run), *data, cwd=workdir)
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert "test/acc" in tested.stdout
    predicted = run_cli("predict", "--ckpt_path", str(run), "--trainer.limit_predict_batches", "1", *data, cwd=workdir)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    with (run / "predict" / "predictions.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 16 and rows[0]["source"] == "test:0"
    exported = run_cli("export", "--ckpt_path", str(run), "--format", "torchscript", *data, cwd=workdir)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert len(list((run / "export").glob("*.pt"))) == 1
    return run


@pytest.mark.slow
def test_saved_run_check_test_predict_export(legacy_run: Path, data_dir: Path) -> None:
    classify = load_classifier(check_test_predict_export(legacy_run, data_dir))
    assert len(classify(torch.zeros(2, 28, 28, dtype=torch.uint8))) == 2


def test_classifier_load_from_checkpoint_builds_the_class_the_checkpoint_names() -> None:
    from cnn_lightning.models import DenseNet
    from cnn_lightning.training import Classifier

    model = Classifier.load_from_checkpoint(FIXTURE / "checkpoints" / "last.ckpt")
    assert type(model) is DenseNet and model.hparams.growth_rate == 8
    assert type(DenseNet.load_from_checkpoint(FIXTURE / "checkpoints" / "last.ckpt")) is DenseNet


@pytest.mark.slow  # whole CLI processes or fits, about 10 s: the full suite runs it
def test_report_overwrite_is_a_flag(
    legacy_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(legacy_run)
    main(["report", "lightning_logs", "--out", "out"])
    main(["report", "lightning_logs", "--out", "out", "--overwrite"])  # a flag: no value needed
    with pytest.raises(SystemExit) as refused:
        main(["report", "lightning_logs", "--out", "out"])
    assert refused.value.code == 2 and "--overwrite" in capsys.readouterr().err


FIXTURE_0_2_0 = Path(__file__).parent / "fixtures" / "lenet_run_0.2.0"


@pytest.fixture
def run_0_2_0(tmp_path: Path) -> Path:
    """A copy of the 0.2.0 fixture (engine settings among the model's, retain_host_memory the Trainer's) as
    ``lightning_logs/version_0`` of a fresh working directory."""
    shutil.copytree(FIXTURE_0_2_0, tmp_path / "lightning_logs" / "version_0")
    return tmp_path


def test_the_0_2_0_fixture_holds_the_settings_that_moved() -> None:
    config = yaml.safe_load((FIXTURE_0_2_0 / "config.yaml").read_text())
    assert config["model"]["init_args"]["steps_per_batch"] == 4 and "retain_host_memory" in config["trainer"]
    last = load_checkpoint(FIXTURE_0_2_0 / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 12 and last["hyper_parameters"]["steps_per_batch"] == 4


@pytest.mark.slow  # whole CLI processes or fits, about 10 s: the full suite runs it
def test_a_run_of_0_2_0_resumes_in_place_with_its_engine_settings(run_0_2_0: Path, data_dir: Path) -> None:
    """Its last.ckpt stands mid-epoch at step 12, saved inside chunks of 4: resumed with the chunks its config asked
    for (now the strategy's), once told which settings were translated and until which version."""
    run = run_0_2_0 / "lightning_logs" / "version_0"
    result = run_cli("fit", "--ckpt_path", "lightning_logs/version_0", "--trainer.max_steps", "16",
                     "--data.data_dir", str(data_dir), cwd=run_0_2_0)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("holds settings of version 0.2.0") == 1 and "Version 0.4.0 drops" in result.stderr
    assert "Chunked steps: 4 optimizer steps per batch" in result.stdout + result.stderr
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 16
    resumed = yaml.safe_load((run / "config.resume-1.yaml").read_text())
    assert resumed["trainer"]["strategy"]["init_args"]["steps_per_batch"] == 4
    assert "steps_per_batch" not in resumed["model"]["init_args"] and "retain_host_memory" not in resumed["trainer"]


@pytest.mark.slow
def test_a_run_of_0_2_0_check_test_predict_export(run_0_2_0: Path, data_dir: Path) -> None:
    check_test_predict_export(run_0_2_0, data_dir)


def test_a_checkpoint_of_0_2_0_loads_from_python() -> None:
    from cnn_lightning.models import LeNet
    from cnn_lightning.training import Classifier

    last = FIXTURE_0_2_0 / "checkpoints" / "last.ckpt"
    for model in (Classifier.load_from_checkpoint(last), LeNet.load_from_checkpoint(last)):
        assert type(model) is LeNet and "steps_per_batch" not in model.hparams and model.hparams.momentum == 0.9
    classify = load_classifier(FIXTURE_0_2_0)
    assert len(classify(torch.zeros(3, 28, 28, dtype=torch.uint8))) == 3


def test_an_old_module_path_warns_once_and_names_the_version_that_drops_it() -> None:
    old = importlib.import_module("cnn_lightning.search_space")
    with pytest.warns(FutureWarning, match=r"cnn_lightning\.search_space\.Space is version 0\.1\.0's path.*0\.4\.0"):
        first = old.Space
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert old.Space is first  # once per path
