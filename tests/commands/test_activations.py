"""``python -m cnn_lightning activations`` on a trained run, and the ActivationImages callback of a fit: PNG grids in
the run's activations/ folder (never overwritten) and TensorBoard images."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnn_lightning.__main__ import main
from cnn_lightning.commands import DESCRIPTIONS, first_sentence, run_function
from cnn_lightning.commands.fit import make_cli
from tests.test_errors import fails

SHORT = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "10", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu",
         "--data.batch_size", "64"]  # fmt: skip


@pytest.fixture(scope="module")
def lenet_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LeNet run of ten batches, with the exercise 7.6-4 config: its fit logs the activations to TensorBoard."""
    root = tmp_path_factory.mktemp("activations")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        make_cli(["fit", "--config", "exercises/7.6-4-activations", "--data.data_dir", str(data_dir), *SHORT])
    return root / "lightning_logs" / "exercises-7.6-4-activations" / "version_0"


def test_the_command_is_in_the_table_with_its_docstrings_first_sentence() -> None:
    assert DESCRIPTIONS["activations"] == first_sentence(run_function("activations"))


@pytest.mark.slow
def test_grids_of_two_layers_for_eight_training_images_of_two_classes(
    lenet_run: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["activations", "--ckpt_path", str(lenet_run), "--layers", "features.1", "net.features.4", "--classes",
            "Sweater", "Coat", "--data_dir", str(data_dir)]  # fmt: skip
    main(args)
    printed = capsys.readouterr().out
    folder = lenet_run / "activations"
    assert sorted(path.name for path in folder.iterdir()) == [
        "features.1.png",
        "features.4.png",
        "filters-features.0.png",
    ]
    assert f"{folder / 'features.1.png'}: features.1 [6, 28, 28], rows: Pullover ×4, Coat ×4" in printed
    assert Image.open(folder / "features.1.png").size == (7 * 30 + 2, 8 * 30 + 2)  # input + 6 channels, 8 images
    assert Image.open(folder / "features.4.png").size == (17 * 32 + 2, 8 * 32 + 2)  # 10 px maps drawn at 30 px
    seconds = float(re.search(r"Wrote 3 PNG file\(s\) in ([\d.]+) s\.", printed).group(1))
    assert seconds < 2.0  # the target: 8 images x 2 layers of LeNet, the command's own work on the CPU
    main(args)  # again: new files beside the first ones, never over them
    assert {path.name for path in folder.iterdir()} >= {"features.1-1.png", "features.4-1.png"}
    assert f"{folder / 'features.1-1.png'}" in capsys.readouterr().out


@pytest.mark.slow
def test_own_pictures_and_generated_ones(
    lenet_run: Path, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.new("RGB", (120, 90), "white").save(pictures / "blank.png")
    Image.new("L", (64, 64), 30).save(pictures / "dark.jpg")
    main(["activations", "--ckpt_path", str(lenet_run), "--layers", "features.1", "--images", str(pictures)])
    printed = capsys.readouterr().out
    assert "rows: blank.png, dark.jpg" in printed
    main(["activations", "--ckpt_path", str(lenet_run), "--layers", "head.1", "--images", "generated"])
    assert "head.1 [120], rows: generated:uniform noise, generated:gaussian noise" in capsys.readouterr().out


@pytest.mark.slow
def test_wrong_names_are_one_line_each(lenet_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = ["activations", "--ckpt_path", str(lenet_run)]
    message = fails(capsys, *run, "--layers", "features.7")
    assert "--layers features.7: LeNet has no such layer" in message and "features.5, head, head.0" in message
    assert "Its classes: T-shirt/top, Trouser" in fails(capsys, *run, "--classes", "Jumper")
    assert "pass one of them" in fails(capsys, *run, "--classes", "Coat", "--images", "generated")


@pytest.mark.slow
def test_the_fit_logs_the_activations_to_tensorboard(lenet_run: Path) -> None:
    events = EventAccumulator(str(lenet_run), size_guidance={"images": 0})
    events.Reload()
    tags = set(events.Tags()["images"])
    assert {
        "views/activations/features.1",
        "views/activations/features.4",
        "views/activations/filters-features.0",
    } <= tags
    image = events.Images("views/activations/features.1")[-1]
    assert (image.width, image.height) == (7 * 30 + 2, 8 * 30 + 2)


@pytest.mark.slow
def test_a_wrong_layer_stops_the_fit_before_it_trains(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "look.yaml"
    config.write_text("trainer:\n  callbacks:\n    - class_path: cnn_lightning.callbacks.ActivationImages\n"
                      "      init_args:\n        layers: [features.9]\n")  # fmt: skip
    message = fails(capsys, "fit", "--config", "lenet.yaml", "--config", str(config), "--data.data_dir", str(data_dir),
                    *SHORT)  # fmt: skip
    assert "--layers features.9: LeNet has no such layer" in message
    assert not list(tmp_path.glob("lightning_logs/*/checkpoints/*.ckpt"))
