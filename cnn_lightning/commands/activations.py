"""``python -m cnn_lightning activations --ckpt_path RUN``: what chosen layers of a trained network compute for a few
images (training images of chosen classes, or a folder of your own pictures), and its first convolution's filters,
as PNG grids in the run's ``activations/`` folder (never overwriting one). D2L §7.6, exercises 4 and 5."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from cnn_lightning.activations import (
    MAX_CHANNELS,
    activation_grid,
    capture,
    default_layers,
    examples_of,
    filter_grid,
    find_layers,
    first_convolution,
    model_inputs,
    pictures_from,
    save_png,
)
from cnn_lightning.data.datasets import (
    Dataset,
    checkpoint_dataset,
    checkpoint_normalization,
    class_indices,
    offline_dirs_for,
)
from cnn_lightning.data.fashion_mnist import load_split, prepare_raw_files
from cnn_lightning.data.own_images import Invert
from cnn_lightning.errors import ConfigError, on_full_disk
from cnn_lightning.output_places import new_file
from cnn_lightning.runs import run_folder
from cnn_lightning.training.trained_model import load_trained

FOLDER = "activations"


def training_examples(
    dataset: Dataset, data: dict, classes: list[str] | None, count: int, data_dir: str | None
) -> tuple[torch.Tensor, list[str]]:
    """``count`` training images of ``classes`` (every class when None), grouped by class, and their class names."""
    data_dir = data_dir or data.get("data_dir") or "data"
    offline = offline_dirs_for(dataset, [*data.get("offline_dirs", []), *dataset.offline_dirs])
    raw = prepare_raw_files(data_dir, offline, bool(data.get("download", True)), dataset.source)
    images, labels = load_split(raw, train=True, source=dataset.source)
    wanted = class_indices(dataset, classes) if classes else list(range(len(dataset.classes)))
    chosen = examples_of(labels, wanted, count)
    return images[chosen], [dataset.classes[label] for label in labels[chosen].tolist()]


def activations(
    ckpt_path: str,
    layers: list[str] | None = None,
    images: str | None = None,
    classes: list[str] | None = None,
    num_images: int = 8,
    max_channels: int = MAX_CHANNELS,
    data_dir: str | None = None,
    invert: Invert = "auto",
) -> list[Path]:
    """Write PNG grids of chosen layers' activations for a few images, and of the first convolution's filters.

    Each grid has one row per image: the image as the network sees it, then one cell per channel of the layer's
    output (the first ``max_channels``), each channel scaled over the images shown. The files go into the run's
    ``activations/`` folder (``features.1.png``, ``features.1-1.png``, ... : never overwritten) and are printed.

    Args:
        ckpt_path: a run folder (its best checkpoint), or a checkpoint file.
        layers: layers as ``summary`` names them, e.g. ``--layers features.1 features.4`` (default: the first two
            convolutions).
        images: a folder, file or glob of your own pictures (given the dataset's look, as ``predict`` does), or
            ``generated`` (noise, shapes, stripes: pictures unlike any dataset's), instead of training images.
        classes: training images of these classes, e.g. ``--classes Sweater Coat`` (default: every class).
        num_images: images shown, spread evenly over the classes.
        max_channels: channels drawn per layer.
        data_dir: where the dataset's files are (default: the run's).
        invert: for ``images``: make dark-on-light pictures light-on-dark (``auto``: decided per picture).
    """
    started = time.perf_counter()
    if num_images < 1 or max_channels < 1:
        raise ConfigError("activations: --num_images and --max_channels take a whole number of at least 1.")
    if images and classes:
        raise ConfigError("activations: --images shows your pictures, --classes training images: pass one of them.")
    model, checkpoint, path = load_trained(ckpt_path)
    found = find_layers(model.net, layers or default_layers(model.net), type(model).__name__)
    data = checkpoint.get("datamodule_hyper_parameters") or {}
    if images:
        pictures, sources = pictures_from(images, invert)
        pictures, sources = pictures[:num_images], [Path(source).name for source in sources[:num_images]]
    else:
        pictures, sources = training_examples(checkpoint_dataset(checkpoint), data, classes, num_images, data_dir)
    normalization = checkpoint_normalization(checkpoint)
    outputs = capture(model.net, model_inputs(pictures, model.input_size, normalization), found)
    shown = model_inputs(pictures, model.input_size, None)  # [N, 1, S, S] in [0, 1], as the network sees them
    grids = {name: activation_grid(shown, outputs[name], max_channels) for name, _ in found}
    if (conv := first_convolution(model.net)) is not None:
        grids[f"filters-{conv[0]}"] = filter_grid(conv[1])
    folder = (run_folder(path) or path.parent) / FOLDER
    written = []
    with on_full_disk("the activation grids", folder, intact=f"The run {folder.parent} is intact.", remove=written):
        for name, grid in grids.items():
            target = new_file(folder, stem=name, suffix=".png")
            written.append(target)
            save_png(grid, target)
    rows = ", ".join(sources) if images else _counted(sources)
    for (name, _), target in zip(found, written, strict=False):
        channels = min(max_channels, outputs[name].shape[1] if outputs[name].dim() == 4 else 1)
        print(f"{target}: {name} {list(outputs[name].shape[1:])}, rows: {rows}; columns: input, {channels} channel(s)")
    if conv is not None:
        print(f"{written[-1]}: the filters of {conv[0]} {list(conv[1].weight.shape)}")
    print(f"Wrote {len(written)} PNG file(s) in {time.perf_counter() - started:.2f} s.", flush=True)
    return written


def _counted(names: list[str]) -> str:
    """``Pullover ×4, Coat ×4``: the rows' classes, in order."""
    return ", ".join(f"{name} ×{names.count(name)}" for name in dict.fromkeys(names))
