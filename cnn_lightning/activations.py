"""A look inside a network: the activations (feature maps) chosen layers compute for a few images, and the filters of
its first convolution, as image grids (D2L §7.6, exercises 4 and 5).

Layers are named as ``summary`` names them (``features.0``, ``b1``, ``b2.0.conv1``; ``net.features.0`` works too).
The maps come from forward hooks (``torch.nn.Module.register_forward_hook``) on those layers during one forward pass
in eval mode; the grids from ``torchvision.utils.make_grid``: one row per image, its input first, then one cell per
channel. Each channel is scaled to [0, 1] over the images shown, so a channel's cells compare across images (a
sweater's against a coat's) and a channel that never fires stays dark.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.utils import make_grid

from cnn_lightning.data.augmentation import normalize
from cnn_lightning.data.own_images import Invert, load_images
from cnn_lightning.data.resident_batches import resize_batch
from cnn_lightning.errors import ConfigError

PLAIN_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)  # summary opens them without --depth
MIN_CELL = 28  # pixels a feature map is enlarged to at least (nearest neighbour: each value a visible square)
MAX_CHANNELS = 16  # channels drawn per layer unless asked otherwise
GENERATED = "generated"  # --images generated: pictures made here, unlike any dataset's (exercise 5)


def shown_layer_names(net: nn.Module) -> list[str]:
    """The layers ``summary`` lists without ``--depth``: each child, and inside plain containers their children."""
    names = []
    for name, child in net.named_children():
        names.append(name)
        if isinstance(child, PLAIN_CONTAINERS):
            names += [f"{name}.{inner}" for inner in shown_layer_names(child)]
    return names


def find_layers(net: nn.Module, names: Sequence[str], model_name: str = "the network") -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of each layer in ``names`` (as ``summary`` names them, ``net.`` in front or not), or one line
    naming the wrong one, what it may have meant and the valid names."""
    modules = dict(net.named_modules())
    found = []
    for asked in names:
        name = asked.removeprefix("net.")
        if not name or name not in modules:
            shown = shown_layer_names(net)
            near = difflib.get_close_matches(name, list(modules)[1:], n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(
                f"--layers {asked}: {model_name} has no such layer.{hint} Its layers, as summary names them: "
                f"{', '.join(shown)} (inner ones: summary --depth 1)."
            )
        found.append((name, modules[name]))
    return found


def first_convolution(net: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """The network's first 2-d convolution, in registration order (the first the input meets in the book's nets)."""
    return next(((name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d)), None)


def default_layers(net: nn.Module) -> list[str]:
    """The first two convolutions: "the first and second layer" of D2L §7.6's exercise 4."""
    return [name for name, m in net.named_modules() if isinstance(m, nn.Conv2d)][:2]


def model_inputs(images: torch.Tensor, size: int, normalization: tuple[float, float] | None) -> torch.Tensor:
    """uint8 ``[N, 28, 28]`` images as the model takes them: resized as in training, standardized where it was."""
    x = resize_batch(images, size)
    return normalize(x, *normalization) if normalization else x


@torch.no_grad()
def capture(net: nn.Module, inputs: torch.Tensor, layers: Sequence[tuple[str, nn.Module]]) -> dict[str, torch.Tensor]:
    """Each layer's output for ``inputs``, from forward hooks during one eval-mode pass of ``net`` (a model's
    network; its plain ``forward``, so that a compiled network runs uncompiled here), training mode restored."""
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: object, output: object) -> None:
            if isinstance(output, torch.Tensor):
                outputs[name] = output.detach().float().cpu()

        return hook

    modes = {module: module.training for module in net.modules()}
    handles = [module.register_forward_hook(keep(name)) for name, module in layers]
    try:
        net.eval()
        net.forward(inputs)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    missing = [name for name, _ in layers if name not in outputs]
    if missing:
        raise ConfigError(f"--layers {', '.join(missing)}: not run by the forward pass, or not returning one tensor.")
    return outputs


def as_maps(output: torch.Tensor) -> torch.Tensor:
    """A layer's output as ``[N, C, h, w]`` maps: a vector ``[N, F]`` (a fully connected layer) as one square map."""
    if output.dim() == 4:
        return output
    flat = output.flatten(1)
    side = math.ceil(math.sqrt(flat.shape[1]))
    return F.pad(flat, (0, side * side - flat.shape[1])).reshape(len(flat), 1, side, side)


def _cell(side: int) -> int:
    """The drawn size of a map of ``side``: enlarged by a whole factor to at least :data:`MIN_CELL`."""
    return side * max(1, math.ceil(MIN_CELL / side))


def _resized(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    mode = "nearest" if size > images.shape[-1] else "area"
    return F.interpolate(images, size=(size, size), mode=mode)


def activation_grid(shown: torch.Tensor, output: torch.Tensor, max_channels: int = MAX_CHANNELS) -> torch.Tensor:
    """``[3, H, W]`` in [0, 1]: one row per image, its input ``shown`` (``[N, 1, H, W]`` in [0, 1]) then the first
    ``max_channels`` channels of the layer's ``output``, each channel scaled over the images."""
    maps = as_maps(output)[:, :max_channels]
    low = maps.amin(dim=(0, 2, 3), keepdim=True)
    span = maps.amax(dim=(0, 2, 3), keepdim=True) - low
    maps = (maps - low) / span.clamp(min=1e-12)
    size = _cell(maps.shape[-1])
    cells = torch.cat([_resized(shown.float().cpu(), size), _resized(maps, size)], dim=1)  # [N, 1 + C, S, S]
    tiles = cells.reshape(-1, 1, size, size)
    return make_grid(tiles, nrow=cells.shape[1], padding=2, pad_value=1.0)


def filter_grid(conv: nn.Conv2d) -> torch.Tensor:
    """``[3, H, W]`` in [0, 1]: each filter of ``conv`` (one row per output channel, one cell per input channel),
    scaled over all of them, so that the strongest weights are the lightest and zero is one grey."""
    weight = conv.weight.detach().float().cpu()
    bound = weight.abs().max().clamp(min=1e-12)
    scaled = (weight / bound + 1) / 2
    size = _cell(weight.shape[-1])
    tiles = _resized(scaled.reshape(-1, 1, *weight.shape[-2:]), size)
    return make_grid(tiles, nrow=weight.shape[1] * max(1, 8 // weight.shape[1]), padding=2, pad_value=1.0)


def save_png(grid: torch.Tensor, path: Path) -> None:
    """Write a ``[3, H, W]`` grid in [0, 1] to ``path`` as PNG (the file may exist empty: reserved by the caller)."""
    pixels = grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(np.ascontiguousarray(pixels)).save(path, format="PNG")


def examples_of(labels: torch.Tensor, classes: Sequence[int], count: int) -> torch.Tensor:
    """Indices of ``count`` images spread over ``classes`` (the first of each, in the data's order), grouped by
    class: 8 over two classes are four of each."""
    per_class = [count // len(classes) + (i < count % len(classes)) for i in range(len(classes))]
    chosen = [torch.nonzero(labels == label).flatten()[:n] for label, n in zip(classes, per_class, strict=True)]
    return torch.cat(chosen)


def generated_pictures() -> tuple[torch.Tensor, list[str]]:
    """Eight ``[28, 28]`` uint8 pictures unlike any dataset's, light on dark as the datasets are: uniform noise,
    Gaussian noise, a disc, a square's outline, stripes, a checkerboard, a gradient and a cross (D2L §7.6, exercise
    5: "feed significantly different images ... or even random noise")."""
    generator = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    square = torch.zeros(28, 28)
    square[6:22, 6:22], square[9:19, 9:19] = 1, 0
    pictures = {
        "uniform noise": torch.rand(28, 28, generator=generator),
        "gaussian noise": (0.5 + 0.2 * torch.randn(28, 28, generator=generator)).clamp(0, 1),
        "disc": (((x - 13.5) ** 2 + (y - 13.5) ** 2) < 81).float(),
        "square outline": square,
        "stripes": ((x // 3) % 2 == 0).float(),
        "checkerboard": (((x // 4) + (y // 4)) % 2 == 0).float(),
        "gradient": (x + y) / 54,
        "cross": ((abs(x - 13.5) < 2) | (abs(y - 13.5) < 2)).float(),
    }
    images = torch.stack(list(pictures.values())).mul(255).round().to(torch.uint8)
    return images, [f"{GENERATED}:{name}" for name in pictures]


def pictures_from(spec: str, invert: Invert = "auto") -> tuple[torch.Tensor, list[str]]:
    """The pictures ``--images`` names: ``generated`` (:func:`generated_pictures`), or a folder, file or glob of your
    own, given the dataset's look as ``predict`` gives them (``./generated`` for a folder of that name)."""
    return generated_pictures() if spec == GENERATED else load_images(spec, invert)
