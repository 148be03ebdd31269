"""Using what was trained: predictions written to CSV, one's own images, the best checkpoint, no stray runs."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnn_lightning.__main__ import main
from cnn_lightning.commands.fit import make_cli
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.fashion_mnist import CLASSES
from cnn_lightning.runs import runs_under
from tests.conftest import SmallDisk, run_cli
from tests.data.catalogue_photos import write_catalogue_photos
from tests.test_errors import fails


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def predict(capsys: pytest.CaptureFixture, *args: str) -> tuple[Path, list[dict[str, str]]]:
    main(
        ["predict", "--ckpt_path", "lightning_logs/lenet_bn/version_0", "--trainer.enable_progress_bar", "false", *args]
    )
    out = capsys.readouterr().out
    path = Path(out.split("Predictions: ")[1].split()[0])
    return path, read_csv(path)


def test_predict_writes_the_test_set_and_matches_test(trained: Path, data_dir: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(trained)
    path, rows = predict(capsys, "--data.data_dir", str(data_dir))
    assert path.parent == Path("lightning_logs/lenet_bn/version_0/predict")  # inside the checkpoint's run
    assert len(rows) == 10_000 and rows[0]["source"] == "test:0" and rows[-1]["source"] == "test:9999"
    assert list(rows[0])[4:] == CLASSES
    accuracy = sum(row["prediction"] == row["label"] for row in rows) / len(rows)
    cli = make_cli(["test", "--ckpt_path", "lightning_logs/lenet_bn/version_0", "--data.data_dir", str(data_dir),
                    "--trainer.enable_progress_bar", "false"])  # fmt: skip
    assert accuracy == pytest.approx(float(cli.trainer.callback_metrics["test/acc"]), abs=1e-6)
    again, _ = predict(capsys, "--data.data_dir", str(data_dir))
    assert again != path and path.is_file()  # a second call writes a new file; the first stays
    # validate/test/predict with a checkpoint log into that run: no new version_N beside it or inside it (TensorBoard
    # would list it as a run); the test's figures are the run's own, under tags of their own
    assert sorted(p.relative_to("lightning_logs").as_posix() for p in runs_under(Path("lightning_logs"))) == [
        "lenet_bn/version_0"
    ]
    run = Path("lightning_logs/lenet_bn/version_0")
    assert not (run / "test").exists() and not list((run / "predict").glob("version_*"))
    assert (run / "config.test-1.yaml").is_file() and (run / "config.yaml").is_file()
    events = EventAccumulator(str(run))
    events.Reload()
    assert {"verdict_eval_test/acc", "train/loss"} <= set(events.Tags()["scalars"]) and len(events.Graph().node) > 0


@pytest.mark.slow  # whole CLI processes or fits, about 10 s: the full suite runs it
def test_own_photos_score_as_the_same_images_in_the_dataset(
    trained: Path, data_dir: Path, monkeypatch, capsys, recwarn
) -> None:
    """200 test images as a shop's catalogue photos (margins, off-centre, uneven light, noise and JPEG, cut-outs with
    transparency) and as own photos on backgrounds that are not white (a tinted light, a grey card, coloured paper):
    prepared as Fashion-MNIST's images were made, they score within 5 points of the images themselves
    (benchmarks/own_photos.py measures a larger set); unreadable files beside them are named and skipped."""
    monkeypatch.chdir(trained)
    data = FashionMNISTDataModule(data_dir=str(data_dir))
    data.setup("test")
    images, labels = (part[:200] for part in data.split("test"))
    paths = write_catalogue_photos(trained / "photos", images)
    (trained / "photos" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (trained / "photos" / "notes.txt").write_text("not an image")
    _, originals = predict(capsys, "--data.data_dir", str(data_dir), "--trainer.limit_predict_batches", "1")
    _, rows = predict(capsys, "--data.predict_path", "photos")
    assert [Path(row["source"]).name for row in rows] == [path.name for path in paths]
    assert all(row["label"] == "" for row in rows)
    warned = " ".join(str(w.message) for w in recwarn)
    assert "broken.png" in warned and "notes.txt" in warned
    truth = [CLASSES[label] for label in labels.tolist()]
    as_photos = sum(row["prediction"] == name for row, name in zip(rows, truth, strict=True)) / 200
    as_images = sum(row["prediction"] == name for row, name in zip(originals[:200], truth, strict=True)) / 200
    assert as_photos >= as_images - 0.05, (as_photos, as_images)
    assert not list((trained / "photos").glob("*.csv"))  # nothing written next to the images


@pytest.mark.slow
def test_best_checkpoint_and_run_folders(trained: Path, data_dir: Path, monkeypatch) -> None:
    monkeypatch.chdir(trained)
    for ckpt in ("best", "lightning_logs/lenet_bn/version_0"):
        done = run_cli("test", "--config", "lenet_bn.yaml", "--ckpt_path", ckpt, "--data.data_dir", str(data_dir),
                       "--trainer.enable_progress_bar", "false", cwd=trained)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Checkpoint: lightning_logs/lenet_bn/version_0/checkpoints/best-epoch=0" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--data.predict_path", "no/such/place"), "no such file or folder"),
        (("--data.predict_path", "empty"), "the folder holds no files"),
        (("--ckpt_path", "not_a_checkpoint.ckpt"), "corrupt or truncated"),
    ],
)
def test_bad_predict_input_is_one_line(trained: Path, monkeypatch, capsys, args: tuple[str, ...], message: str) -> None:
    monkeypatch.chdir(trained)
    (trained / "empty").mkdir(exist_ok=True)
    (trained / "not_a_checkpoint.ckpt").write_text("hello")
    before = sorted(str(p) for p in Path("lightning_logs").rglob("*"))
    argv = (
        ("predict", "--ckpt_path", "lightning_logs/lenet_bn/version_0", *args)
        if args[0] != "--ckpt_path"
        else ("predict", *args)
    )
    assert message in fails(capsys, *argv, "--config", "lenet_bn.yaml")
    assert sorted(str(p) for p in Path("lightning_logs").rglob("*")) == before  # nothing written or overwritten


def test_report_counts_runs_not_the_commands_run_on_them(trained: Path, monkeypatch, capsys) -> None:
    from cnn_lightning.commands.report import report

    monkeypatch.chdir(trained)
    main(["test", "--ckpt_path", "lightning_logs/lenet_bn/version_0", "--trainer.enable_progress_bar", "false"])
    capsys.readouterr()
    report("lightning_logs", out=str(trained / "report-out"))
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| lenet_bn/version")]
    assert [row.split("|")[1].strip() for row in rows] == ["lenet_bn/version_0"]


def test_predictions_on_a_full_disk_are_one_line_and_leave_no_file(
    trained: Path, small_disk: SmallDisk, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(trained)
    target = small_disk.root / "predictions.csv"
    refused = small_disk.refuses(capsys, "predict", "--ckpt_path", "lightning_logs/lenet_bn/version_0",
                                 "--predictions.output", str(target))  # fmt: skip
    assert refused.startswith(
        f"error: No space left on device: the predictions could not be written to {target.parent}"
    )
    assert not target.exists() and small_disk.leftovers() == []


@pytest.mark.slow  # whole CLI processes or fits, about 10 s: the full suite runs it
def test_a_checkpoint_outside_its_run_is_used_through_the_class_it_names(
    tmp_path: Path, data_dir: Path, monkeypatch, capsys
) -> None:
    """A .ckpt copied out of its run (no config.yaml beside it): predict and export build the model it names."""
    run = Path(__file__).parents[1] / "fixtures" / "densenet_run_0.1.0"
    checkpoint = tmp_path / "shared" / "densenet.ckpt"
    checkpoint.parent.mkdir()
    shutil.copy(run / "checkpoints" / "last.ckpt", checkpoint)
    monkeypatch.chdir(tmp_path)
    main(["predict", "--ckpt_path", str(checkpoint), "--data.data_dir", str(data_dir),
          "--trainer.limit_predict_batches", "1", "--trainer.enable_progress_bar", "false"])  # fmt: skip
    assert len(read_csv(Path(capsys.readouterr().out.split("Predictions: ")[1].split()[0]))) == 256
    main(["export", "--ckpt_path", str(checkpoint), "--format", "torchscript", "--data.data_dir", str(data_dir)])
    assert "Exported DenseNet" in capsys.readouterr().out


def test_no_silent_untrained_model(tmp_path: Path, monkeypatch, capsys) -> None:
    """Without a checkpoint, predict and export refuse instead of labelling everything with random weights."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pics").mkdir()
    Image.new("L", (40, 40), 200).save(tmp_path / "pics" / "one.png")
    (tmp_path / "empty_run").mkdir()
    untrained = fails(capsys, "predict", "--config", "lenet.yaml", "--data.predict_path", "pics")
    assert "predict needs trained weights: pass --ckpt_path" in untrained
    assert "predict needs a model: pass --ckpt_path" in fails(capsys, "predict", "--data.predict_path", "pics")
    assert "export needs a model: pass --ckpt_path" in fails(capsys, "export", "--ckpt_path", "empty_run")
    assert not (tmp_path / "lightning_logs").exists()
