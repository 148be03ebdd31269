"""The TensorBoard dashboards of a real short fit: pictures, per-class accuracy, graph, setup and hparams."""

from __future__ import annotations

import io
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2

from cnn_lightning.callbacks.dashboards import SETUP_TAG, Dashboards, parse_setup_markdown
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.fashion_mnist import CLASSES
from cnn_lightning.models import LeNet
from tests.conftest import REPO, run_cli

SIZE, BATCH, VAL_BATCHES, EPOCHS = 32, 64, 2, 2  # 32 px: not the data's 28, so the grid shows the resize


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> EventAccumulator:
    """Everything a two-epoch LeNet fit through the CLI logged, read back with TensorBoard's own reader."""
    cwd = tmp_path_factory.mktemp("dashboards")
    result = run_cli(
        "fit",
        f"--config={REPO / 'configs' / 'lenet.yaml'}",
        f"--data.data_dir={data_dir}",
        f"--model.init_args.input_size={SIZE}",
        f"--data.batch_size={BATCH}",
        f"--trainer.max_epochs={EPOCHS}",
        "--trainer.limit_train_batches=3",
        f"--trainer.limit_val_batches={VAL_BATCHES}",
        "--trainer.limit_test_batches=2",
        "--trainer.enable_progress_bar=false",
        cwd=cwd,
        timeout=300,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    accumulator = EventAccumulator(str(cwd / "lightning_logs" / "lenet" / "version_0"), size_guidance={"images": 0})
    accumulator.Reload()
    return accumulator


def _image(events: EventAccumulator, tag: str, index: int = -1) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(events.Images(tag)[index].encoded_image_string)))


@pytest.mark.slow  # whole CLI processes or fits, about 10 s: the full suite runs it
def test_input_grid_shows_resized_training_images(events: EventAccumulator) -> None:
    (entry,) = events.Images("views/inputs_train_batch")
    # make_grid: 8 columns of SIZE-pixel cells with 2-pixel borders; 64 images fill 8 rows.
    assert (entry.width, entry.height) == (8 * (SIZE + 2) + 2, 8 * (SIZE + 2) + 2)
    cell = _image(events, "views/inputs_train_batch")[2 : 2 + SIZE, 2 : 2 + SIZE]
    assert cell.std() > 10  # a real garment, not a blank or constant tile


def test_confusion_matrix_once_per_validation_epoch_and_after_test(events: EventAccumulator) -> None:
    val = events.Images("views/val_confusion_matrix")
    assert len(val) == EPOCHS  # the sanity check's two batches are not drawn
    assert len({entry.step for entry in val}) == EPOCHS
    assert len(events.Images("views/test_confusion_matrix")) == 1
    picture = _image(events, "views/val_confusion_matrix")
    assert picture.shape[2] == 3 and picture.std() > 10


def test_misclassified_test_images_are_drawn(events: EventAccumulator) -> None:
    (entry,) = events.Images("views/test_misclassified")
    assert entry.width > 500 and entry.height > 100
    assert _image(events, "views/test_misclassified").std() > 10


def test_per_class_accuracy_is_named_by_class_and_agrees_with_val_acc(events: EventAccumulator, data_dir: Path) -> None:
    tags = set(events.Tags()["scalars"])
    assert {f"val_class_acc/{name}" for name in CLASSES} <= tags
    assert "val_class_acc/Sneaker" in tags and "verdict_test_class_acc/Sneaker" in tags
    # The validation loader is unshuffled on one device, so the images evaluated are the split's first ones.
    data = FashionMNISTDataModule(data_dir=str(data_dir))
    data.setup("fit")
    support = torch.bincount(data.split("val")[1][: VAL_BATCHES * BATCH], minlength=len(CLASSES))
    per_class = torch.tensor([events.Scalars(f"val_class_acc/{name}")[-1].value for name in CLASSES])
    assert ((per_class >= 0) & (per_class <= 1)).all()
    # Weighted by class support, the per-class accuracies give back the classifier's own val/acc: the callback's
    # predictions are the model's.
    overall = float((per_class * support).sum() / support.sum())
    assert overall == pytest.approx(events.Scalars("val/acc")[-1].value, abs=1e-5)


def test_model_graph_is_logged(events: EventAccumulator) -> None:
    assert events.Tags()["graph"]
    node_ops = {node.op for node in events.Graph().node}
    assert any("conv" in op.lower() for op in node_ops), node_ops


def test_setup_text_records_what_the_trainer_resolved(events: EventAccumulator) -> None:
    text = events.Tensors(f"{SETUP_TAG}/text_summary")[0].tensor_proto.string_val[0].decode()
    setup = parse_setup_markdown(text)
    parameters = sum(p.numel() for p in LeNet(input_size=SIZE).parameters())
    assert setup["model"] == "LeNet" and setup["parameters"] == str(parameters)
    assert (setup["device"], setup["world_size"], setup["global_batch"]) == ("cpu", "1", str(BATCH))


def test_hparams_plugin_gets_hyperparameters_and_final_metrics(events: EventAccumulator) -> None:
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metrics = {info.name.tag for info in experiment.metric_infos}
    assert {"verdict/test_acc", "verdict/val_acc", "verdict/train_loss"} <= metrics
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert session.session_start_info.hparams["lr"].number_value == pytest.approx(0.9)
    assert session.session_start_info.hparams["input_size"].number_value == SIZE
    assert events.Scalars("verdict/test_acc")[0].value == pytest.approx(events.Scalars("verdict_test/acc")[-1].value)
    hparams = session.session_start_info.hparams
    assert not any(name.startswith("_") for name in hparams)  # the user's settings, not LightningCLI's bookkeeping
    assert hparams["nesterov"].string_value == "False"  # not the number 0.0000
    assert (hparams["Model"].string_value, hparams["Variant"].string_value) == ("LeNet", f"input_size={SIZE}")


def test_training_curves_come_first_in_tensorboard(events: EventAccumulator) -> None:
    """TensorBoard's Time Series sorts cards by tag, a "/" before any letter, groups them by the first segment in
    that order (its ``groupCardsByTag``) and opens the first two groups: train and val, the curves, with every
    picture (inputs, confusion matrices, misclassified images) in a group after them."""
    pictures = events.Tags()["images"]
    tags = sorted(events.Tags()["scalars"] + pictures, key=lambda tag: tag.replace("/", "\0"))
    groups = list(dict.fromkeys(tag.split("/", 1)[0] for tag in tags))
    assert groups[:2] == ["train", "val"] and groups[-1] == "views", groups
    assert len(pictures) >= 4 and all(tag.startswith("views/") for tag in pictures), pictures
    assert {"epoch", "final", "test", "lr-SGD"}.isdisjoint(groups) and "verdict" in groups
    assert {"train/epoch", "train/lr-SGD", "verdict/test_acc", "verdict_test/acc"} <= set(tags)


def test_one_graph_per_run(events: EventAccumulator) -> None:
    """fit logs the model graph; the test after it does not log a second (TensorBoard warns of more than one)."""
    run = Path(events.path)
    graphs = sum(
        event.HasField("graph_def")
        for path in run.glob("events.out.tfevents.*")
        for event in EventFileLoader(str(path)).Load()
    )
    assert graphs == 1


def test_without_a_logger_the_callback_stays_out_of_the_way(data_dir: Path) -> None:
    """``--trainer.logger false``: no pictures to write, so no hooks, no metrics and no drawing."""
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        limit_test_batches=2,
        logger=False,
        callbacks=[Dashboards()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    data = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=32)
    model = LeNet()
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data, verbose=False)
    assert "test/acc" in trainer.callback_metrics
    assert not any("class_acc" in name for name in trainer.callback_metrics)
    assert not model._forward_hooks  # the hook exists only while a logged evaluation runs
