"""``python -m cnn_lightning export``: a trained model as one file usable without this package (ONNX, or
TorchScript), its preprocessing inside and its classes in its metadata, checked against PyTorch before it is kept.

The exported graph takes what Fashion-MNIST is made of, uint8 images ``[batch, 1, 28, 28]`` (a light object on a
dark background), resizes them to the network's input size (bilinear), scales to [0, 1], runs the network and
returns softmax probabilities ``[batch, classes]``. The in-graph resize rounds in float where training's resizes
the uint8 batch with torchvision; the two differ by at most one grey level in a few pixels.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lightning.data.augmentation import FASHION_MNIST_MEAN, FASHION_MNIST_STD, normalize
from cnn_lightning.data.datasets import checkpoint_normalization
from cnn_lightning.errors import ConfigError, UserFacingError, on_full_disk
from cnn_lightning.output_places import check_folder, check_new_file, new_file
from cnn_lightning.runs import load_checkpoint, run_folder
from cnn_lightning.training.test_time_flip import flip_averaged_probabilities

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
# What a user's picture needs before the graph takes it: what cnn_lightning.data.own_images does for predict.
PREPROCESSING_BEFORE = (
    "made as Fashion-MNIST's images were (Xiao et al. 2017): 8-bit grayscale, the edges close to the corner colour "
    "trimmed (5 %), the longest edge resized to 28, sharpened, the shorter edge extended to 28 with the object "
    "centred, negated to a light object on black (cnn_lightning.data.own_images.fashion_mnist_look); the graph does "
    "the resize to the network's input size and the division by 255"
)
CHECK_IMAGES = 1000
TOLERANCE = 1e-4  # largest probability difference allowed against PyTorch


class ExportMismatchError(UserFacingError):
    """The exported file does not compute what the PyTorch model computes."""

    exit_code = 1


class ExportedClassifier(nn.Module):
    """Preprocessing, network and softmax in one module: uint8 ``[N, 1, 28, 28]`` → probabilities ``[N, C]``."""

    def __init__(
        self,
        net: nn.Module,
        input_size: int,
        *,
        normalized: bool | tuple[float, float] = False,
        test_time_flip: bool = False,
    ) -> None:
        super().__init__()
        self.net, self.input_size, self.test_time_flip = net, input_size, test_time_flip
        # The training set's (mean, std) where training standardized (True: Fashion-MNIST's).
        self.normalized = (FASHION_MNIST_MEAN, FASHION_MNIST_STD) if normalized is True else normalized

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.float()
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
            x = x.round().clamp(0, 255)
        x = x / 255
        x = normalize(x, *self.normalized) if self.normalized else x
        return flip_averaged_probabilities(self.net, x) if self.test_time_flip else self.net(x).softmax(dim=1)


def metadata(
    model: Any, categories: list[str], checkpoint: Path, *, normalized: tuple[float, float] | None = None
) -> dict[str, str]:
    """What a user of the file needs to know, as strings (ONNX ``metadata_props``, a TorchScript extra file)."""
    return {
        "model": type(model).__name__,
        "checkpoint": str(checkpoint),
        "class_names": json.dumps(categories),
        "input": "image: uint8 [batch, 1, 28, 28], values 0-255, a light object on a dark background",
        "output": "probabilities: float32 [batch, classes], softmax; argmax is the predicted class"
        + ("; the mean of the image's and its left-right mirror's" if model.hparams.get("test_time_flip") else ""),
        "input_size": str(model.input_size),
        "preprocessing_in_graph": f"bilinear resize to {model.input_size}x{model.input_size}, round, / 255"
        + (f", (x - {normalized[0]:.6g}) / {normalized[1]:.6g}" if normalized else ""),
        "preprocessing_before": PREPROCESSING_BEFORE,
    }


def export_model(
    model: Any, datamodule: Any, ckpt_path: str | None, format: str = "onnx", output: str | None = None
) -> Path:
    """Load the checkpoint into ``model``, write the file, check it on test images, return its path."""
    if not ckpt_path:
        raise ConfigError("export needs --ckpt_path: a checkpoint, a run folder (its best checkpoint), or best/last.")
    if format not in FORMATS:
        raise ConfigError(f"--format {format} is not offered. Use one of: {', '.join(FORMATS)}.")
    checkpoint = load_checkpoint(ckpt_path)
    model.load_state_dict(model.upgrade_state_dict(checkpoint["state_dict"]))
    categories = list(checkpoint.get("categories") or model.categories)
    model.net.to(memory_format=torch.contiguous_format)
    normalized = checkpoint_normalization(checkpoint)  # the training set's statistics, as the checkpoint keeps them
    flips = bool(model.hparams.get("test_time_flip"))
    wrapper = ExportedClassifier(model.net, model.input_size, normalized=normalized or False, test_time_flip=flips)
    wrapper = wrapper.eval().float()
    path = _target(Path(ckpt_path), format, output)
    try:
        info = metadata(model, categories, Path(ckpt_path), normalized=normalized)
        with on_full_disk(f"the exported {format} model", path.parent, intact=f"The checkpoint {ckpt_path} is intact."):
            (_write_onnx if format == "onnx" else _write_torchscript)(wrapper, path, info)
        agreement, difference = _check(wrapper, path, format, _test_images(datamodule))
    except ImportError as missing:  # onnx, onnxruntime or onnxscript: the export extra
        path.unlink(missing_ok=True)
        raise ConfigError(
            f"export --format {format} needs {missing.name or 'the export extra'}, which is not installed. Install "
            "the export extra: pip install -e '.[export]' (or use --format torchscript)."
        ) from None
    except BaseException:
        path.unlink(missing_ok=True)  # never leave a half-written or unchecked file behind
        raise
    if agreement < 1.0 or difference > TOLERANCE:
        path.unlink(missing_ok=True)
        raise ExportMismatchError(
            f"The exported {format} model disagrees with PyTorch on {CHECK_IMAGES} test images (classes agree on "
            f"{agreement:.1%}, largest probability difference {difference:.2e} > {TOLERANCE:g}); the file was removed."
        )
    print(
        f"Exported {type(model).__name__} to {path} ({format}); on {CHECK_IMAGES} test images it agrees with "
        f"PyTorch on {agreement:.1%} of the classes, largest probability difference {difference:.2e}.",
        flush=True,
    )
    return path


def _target(checkpoint: Path, format: str, output: str | None) -> Path:
    suffix = FORMATS[format]
    fix = "Pass another --output (a folder or a new file)."
    if output and Path(output).suffix and not Path(output).is_dir():
        path = check_new_file(output, what="the exported model", fix=fix)  # export never overwrites
        path.parent.mkdir(parents=True, exist_ok=True)
        path.open("x").close()
        return path
    folder = Path(output) if output else (run_folder(checkpoint) or checkpoint.parent) / "export"
    return new_file(check_folder(folder, what="the exported model", fix=fix), stem="model", suffix=suffix)


def _write_onnx(wrapper: nn.Module, path: Path, info: dict[str, str]) -> None:
    import onnx  # the export extra: pip install 'cnn-lightning[export]'

    example = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter reports its passes as warnings
        program = torch.onnx.export(
            wrapper,
            (example,),
            input_names=["image"],
            output_names=["probabilities"],
            dynamic_shapes={"image": {0: batch}},
            dynamo=True,
            verbose=False,
        )
    proto = program.model_proto
    onnx.helper.set_model_props(proto, info)
    path.write_bytes(proto.SerializeToString())


def _write_torchscript(wrapper: nn.Module, path: Path, info: dict[str, str]) -> None:
    example = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the resize's size test, constant for this model
        traced = torch.jit.trace(wrapper, example)
    # Serialized in memory, then written by Python: PyTorch's own file writer aborts the process on a full disk.
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files={"metadata.json": json.dumps(info)})
    path.write_bytes(buffer.getvalue())


def _test_images(datamodule: Any) -> torch.Tensor:
    datamodule.setup("test")
    images = datamodule.split("test")[0][:CHECK_IMAGES]
    return images.unsqueeze(1).contiguous()


def _check(wrapper: nn.Module, path: Path, format: str, images: torch.Tensor) -> tuple[float, float]:
    """Agreement of predicted classes and largest probability difference, exported file against PyTorch."""
    with torch.no_grad():
        expected = wrapper(images)
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(["probabilities"], {"image": images.numpy()})[0])
    else:
        with torch.no_grad():
            got = torch.jit.load(str(path))(images)
    agreement = (got.argmax(dim=1) == expected.argmax(dim=1)).float().mean().item()
    return agreement, (got - expected).abs().max().item()
