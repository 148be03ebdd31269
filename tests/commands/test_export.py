"""Export to ONNX and TorchScript, checked against PyTorch, and the Python API."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from cnn_lightning import load_classifier
from cnn_lightning.__main__ import main
from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.data.fashion_mnist import CLASSES
from tests.conftest import SmallDisk
from tests.test_errors import fails

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.mark.slow  # two exports run on 1,000 images each, about 35 s: the full suite runs it
def test_onnx_and_torchscript_agree_with_pytorch(trained: Path, data_dir: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(trained)
    classifier = load_classifier("lightning_logs/lenet_bn/version_0")
    data = FashionMNISTDataModule(data_dir=str(data_dir))
    data.setup("test")
    images = data.split("test")[0][:1000]
    expected = classifier.probabilities(images)
    for fmt in ("onnx", "torchscript"):
        main(
            [
                "export",
                "--ckpt_path",
                "lightning_logs/lenet_bn/version_0",
                "--format",
                fmt,
                "--data.data_dir",
                str(data_dir),
            ]
        )
        out = capsys.readouterr().out
        assert "agrees with PyTorch on 100.0% of the classes" in out
        path = Path(out.split("to ")[1].split(" (")[0])
        assert path.parent == Path("lightning_logs/lenet_bn/version_0/export")
        if fmt == "onnx":
            session = onnxruntime.InferenceSession(str(path))
            (got,) = session.run(None, {"image": images.unsqueeze(1).numpy()})
            meta = session.get_modelmeta().custom_metadata_map
            assert json.loads(meta["class_names"]) == CLASSES and meta["input_size"] == "28"
            got = torch.from_numpy(got)
        else:
            files = {"metadata.json": ""}
            module = torch.jit.load(str(path), _extra_files=files)
            assert json.loads(json.loads(files["metadata.json"])["class_names"]) == CLASSES
            got = module(images.unsqueeze(1))
        assert torch.equal(got.argmax(dim=1), expected.argmax(dim=1))
        assert (got - expected).abs().max() <= 1e-4


def test_python_api_classifies_tensors_and_files(trained: Path, data_dir: Path, tmp_path: Path) -> None:
    classify = load_classifier(trained / "lightning_logs" / "lenet_bn" / "version_0")
    data = FashionMNISTDataModule(data_dir=str(data_dir))
    data.setup("test")
    images = data.split("test")[0][:4]
    from_tensors = classify(images)
    for index, image in enumerate(images):
        from PIL import Image

        Image.fromarray(image.numpy()).save(tmp_path / f"{index}.png")
    from_files = classify(tmp_path)
    assert [p.prediction for p in from_files] == [p.prediction for p in from_tensors]
    assert from_tensors[0].probabilities.keys() == set(CLASSES) and 0 < from_tensors[0].probability <= 1


def test_bad_export_input_is_one_line(trained: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(trained)
    refused = fails(capsys, "export", "--ckpt_path", "lightning_logs/lenet_bn/version_0", "--format", "tflite")
    assert "'onnx', 'torchscript'" in refused and "tflite" in refused
    assert "export needs trained weights: pass --ckpt_path" in fails(capsys, "export", "--config", "lenet_bn.yaml")
    existing = trained / "taken.onnx"
    existing.write_text("mine")
    assert "never overwrites" in fails(
        capsys, "export", "--ckpt_path", "lightning_logs/lenet_bn/version_0", "--output", str(existing)
    )
    assert existing.read_text() == "mine"


def test_export_on_a_full_disk_is_one_line_and_leaves_no_file(
    trained: Path, small_disk: SmallDisk, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(trained)
    target = small_disk.root / "model.pt"
    refused = small_disk.refuses(capsys, "export", "--ckpt_path", "lightning_logs/lenet_bn/version_0", "--format",
                                 "torchscript", "--output", str(target))  # fmt: skip
    assert refused.startswith("error: No space left on device: the exported torchscript model could not be written")
    assert "checkpoint lightning_logs/lenet_bn/version_0/checkpoints/best-" in refused and "is intact" in refused
    assert not target.exists()


def test_export_without_its_extra_names_the_install(trained: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(trained)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed: importing it raises ImportError
    exports = trained / "lightning_logs" / "lenet_bn" / "version_0" / "export"
    before = set(exports.glob("*")) if exports.is_dir() else set()
    refused = fails(capsys, "export", "--ckpt_path", "lightning_logs/lenet_bn/version_0", "--format", "onnx")
    assert "export --format onnx needs onnx, which is not installed" in refused
    assert "pip install -e '.[export]'" in refused
    assert set(exports.glob("*")) == before  # the file begun for it is removed
