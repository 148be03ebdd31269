"""Variants are themselves: a student's own Classifier subclass trains, predicts, exports and loads like the book's
models, a checkpoint saved by a plain lightning.Trainer works as it is (an older one, which does not name its class,
once the class is passed), and report and the HParams tab label each run by what differs from the book's
experiment."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import pytest
import torch

from cnn_lightning import load_classifier
from cnn_lightning.commands import report
from cnn_lightning.commands.fit import make_cli
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.errors import ConfigError
from cnn_lightning.models import LeNet
from cnn_lightning.runs import CLASS_KEY
from tests.models.own_lenet import WideLeNet
from tests.test_errors import fails

OWN = f"{WideLeNet.__module__}.WideLeNet"
SHORT = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu",
         "--data.batch_size", "32"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder with two runs of lenet.yaml: lenet/version_0 the book's LeNet, lenet/version_1 the student's
    WideLeNet."""
    root = tmp_path_factory.mktemp("any_classifier")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for model in ("cnn_lightning.models.LeNet", OWN):
            make_cli(["fit", "--config", "lenet.yaml", "--model", model, "--data.data_dir", str(data_dir), *SHORT])
    return root


@pytest.mark.slow
def test_a_subclass_checkpoint_loads_predicts_and_exports(
    runs: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(runs)
    run = runs / "lightning_logs" / "lenet" / "version_1"
    classifier = load_classifier(run)
    assert type(classifier.model) is WideLeNet and classifier.model.hparams.channels == [12, 32]
    stored = torch.load(next((run / "checkpoints").glob("best-*.ckpt")), weights_only=True)["state_dict"]
    assert all(torch.equal(stored[k], v) for k, v in classifier.model.state_dict().items())
    common = [
        "--data.data_dir",
        str(data_dir),
        "--trainer.accelerator",
        "cpu",
        "--trainer.enable_progress_bar",
        "false",
    ]
    make_cli(["predict", "--ckpt_path", str(run), "--trainer.limit_predict_batches", "1", *common])
    with next((run / "predict").glob("predictions*.csv")).open() as file:
        rows = list(csv.DictReader(file))
    images = FashionMNISTDataModule(data_dir=str(data_dir))
    images.setup("test")
    expected = [p.prediction for p in classifier(images.split("test")[0][:5])]
    assert [row["prediction"] for row in rows[:5]] == expected
    make_cli(["export", "--ckpt_path", str(run), "--format", "torchscript", *common])
    assert len(list((run / "export").glob("model*.pt"))) == 1


@pytest.mark.slow
def test_report_and_hparams_label_runs_by_what_differs(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report.report(str(runs / "lightning_logs"), out=str(runs / "report"))
    printed = capsys.readouterr().out
    header = [c.strip() for c in printed.splitlines()[0].strip("|").split("|")]
    lines = [line for line in printed.splitlines() if line.startswith("| lenet/version_")]
    table = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    rows = {cells[0]: dict(zip(header, cells, strict=True)) for cells in table}
    book = rows["lenet/version_0"]
    assert book["variant"] == "book" and book["book test acc"].startswith("0.806")
    assert rows["lenet/version_1"]["variant"] == "WideLeNet (from LeNet), activation=relu, channels=[12, 32]"
    assert rows["lenet/version_1"]["book test acc"] == "—"  # the book's figure is not this network's
    memory = rows["lenet/version_1"]["peak memory"]
    assert memory.startswith("+") and memory.endswith("MiB")
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.plugins.hparams import plugin_data_pb2

    variants = {}
    for version in ("lenet/version_0", "lenet/version_1"):
        for path in (runs / "lightning_logs" / version).glob("events.out.tfevents.*"):
            for event in event_file_loader.EventFileLoader(str(path)).Load():
                for value in event.summary.value:
                    if value.tag == "_hparams_/session_start_info":
                        data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                        variants[version] = data.session_start_info.hparams["Variant"].string_value
    assert variants == {"lenet/version_0": "book", "lenet/version_1": rows["lenet/version_1"]["variant"]}


@pytest.mark.slow
def test_a_plain_trainer_checkpoint_loads_as_it_is_and_an_older_one_once_its_class_is_passed(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """lightning.Trainer's checkpoint keeps the hyperparameters but not LightningCLI's class path: the model names its
    class itself, so load_classifier and predict take the checkpoint, and its run folder (the Trainer's own
    ``epoch=0-step=2.ckpt``), as they are. One saved before the model named its class says so in one line naming the
    fix, and works once the class is passed."""
    monkeypatch.chdir(tmp_path)
    trainer = L.Trainer(max_steps=2, limit_val_batches=1, accelerator="cpu", enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    trainer.fit(LeNet(pooling="max"), FashionMNISTDataModule(data_dir=str(data_dir), batch_size=32))
    saved = Path(trainer.checkpoint_callback.best_model_path)
    assert saved.parent == tmp_path / "lightning_logs" / "version_0" / "checkpoints"
    checkpoint = torch.load(saved, weights_only=True)
    assert "_class_path" not in checkpoint["hyper_parameters"] and checkpoint[CLASS_KEY].endswith(".LeNet")
    for path in (saved, "lightning_logs/version_0"):
        assert load_classifier(path).model.hparams.pooling == "max"
    common = ["--data.data_dir", str(data_dir), "--trainer.limit_predict_batches", "1"]
    for path in (str(saved), "lightning_logs/version_0"):
        make_cli(["predict", "--ckpt_path", path, *common, "--trainer.enable_progress_bar", "false"])
    assert len(list((tmp_path / "lightning_logs" / "version_0" / "predict").glob("predictions*.csv"))) == 2

    del checkpoint[CLASS_KEY]
    torch.save(checkpoint, tmp_path / "older.ckpt")
    with pytest.raises(ConfigError, match=r"does not say which model class.*model_class=MyNet.*--model") as error:
        load_classifier(tmp_path / "older.ckpt")
    assert "\n" not in str(error.value)
    assert load_classifier(tmp_path / "older.ckpt", model_class=LeNet).model.hparams.pooling == "max"
    older = ["--ckpt_path", "older.ckpt", *common]
    assert "--model cnn_lightning.models.LeNet" in fails(capsys, "predict", *older)
    make_cli(["predict", *older, "--model", "cnn_lightning.models.LeNet", "--trainer.enable_progress_bar", "false"])
    assert len(list((tmp_path / "lightning_logs" / "predict").glob("predictions*.csv"))) == 1
