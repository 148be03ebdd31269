"""Your own pictures given the Fashion-MNIST look before a model trained on it sees them.

Fashion-MNIST's images are 28×28 grayscale, a light product on a black background, scaled so that the longer
side fills the frame and centred (Xiao et al. 2017: trim, resize the longest edge to 28, extend the shorter
edge, negate, grayscale). A photo gets the same: grayscale (any mode: RGB, RGBA on white, palette, 16-bit), an
inversion where the object is darker than its background (``invert="auto"`` compares the border with the
centre), padding to a square with its own background, and an antialiased resize to 28×28. The data module then
resizes to the model's input size exactly as it does the dataset's images.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from PIL import Image, UnidentifiedImageError

from cnn_lightning.errors import ConfigError

SIZE = 28
MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # 89,478,485: PIL's decompression-bomb bound (a 9459 × 9459 picture)
WORKING_SIDE = 1024  # a larger picture is shrunk to this first: its 28 × 28 result is the same, its memory bounded
Invert = bool | Literal["auto"]


def find_files(spec: str) -> list[Path]:
    """Every file ``spec`` names: the file itself, a folder's files (recursively) or a glob's matches; sorted."""
    path = Path(spec).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if not files:
            raise ConfigError(
                f"--data.predict_path {spec}: the folder holds no files: no readable PNG, JPEG, ... image."
            )
        return files
    matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not matches:
        raise ConfigError(
            f"--data.predict_path {spec}: no such file or folder, and no file matches it as a pattern. "
            "Pass an image, a folder of images or a glob such as 'photos/*.jpg'."
        )
    return matches


def to_grayscale(image: Image.Image) -> np.ndarray:
    """``[H, W]`` float array in [0, 255] from any PIL mode; transparency is composited onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        return array * (255.0 / max(array.max(), 1.0)) if array.max() > 255 else array
    if image.mode in ("P", "PA", "LA", "RGBA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("L"), dtype=np.float64)


def should_invert(gray: np.ndarray) -> bool:
    """Whether the object is darker than its background: the border's mean brightness against the centre's."""
    h, w = gray.shape
    bh, bw = max(1, h // 10), max(1, w // 10)
    border = np.concatenate([gray[:bh].ravel(), gray[-bh:].ravel(), gray[:, :bw].ravel(), gray[:, -bw:].ravel()])
    centre = gray[h // 4 : h - h // 4 or None, w // 4 : w - w // 4 or None]
    return float(border.mean()) > float(centre.mean())


def fashion_mnist_look(image: Image.Image, invert: Invert = "auto") -> torch.Tensor:
    """A ``[28, 28]`` uint8 tensor: a light object on a dark background, padded square and fitted into 28×28."""
    gray = to_grayscale(image)
    if invert is True or (invert == "auto" and should_invert(gray)):
        gray = 255.0 - gray
    h, w = gray.shape
    side = max(h, w)
    background = float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
    square = np.full((side, side), background)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = gray
    fitted = Image.fromarray(square.clip(0, 255).round().astype(np.uint8)).resize((SIZE, SIZE), Image.LANCZOS)
    return torch.from_numpy(np.asarray(fitted, dtype=np.uint8).copy())


class PictureTooLarge(ValueError):
    """A picture with more pixels than :data:`MAX_PIXELS`."""


def open_bounded(path: Path) -> Image.Image:
    """The picture at ``path`` decoded within bounded memory: refused from its header when it has more than
    :data:`MAX_PIXELS` pixels (PIL's decompression-bomb bound, which PIL itself only warns about below twice that),
    decoded at a reduced scale where the format allows (JPEG's ``draft``), and shrunk to :data:`WORKING_SIDE` before
    its pixels become arrays."""
    try:
        image = Image.open(path)  # reads the header only
    except Image.DecompressionBombError:
        raise PictureTooLarge(f"more than {2 * MAX_PIXELS:,} pixels; the limit is {MAX_PIXELS:,}") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise PictureTooLarge(f"{width}x{height} = {width * height:,} pixels; the limit is {MAX_PIXELS:,}")
    image.draft(None, (WORKING_SIDE, WORKING_SIDE))  # JPEG: decoded at 1/2 to 1/8 scale when large
    image.load()
    if max(image.size) > WORKING_SIDE:
        image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    return image


def load_images(spec: str, invert: Invert = "auto") -> tuple[torch.Tensor, list[str]]:
    """The readable images ``spec`` names as one ``[N, 28, 28]`` uint8 tensor, with their paths; unreadable and
    non-image files, and pictures over :data:`MAX_PIXELS`, are named in one warning and skipped; none readable is an
    error."""
    images, sources, skipped = [], [], []
    for path in find_files(spec):
        try:
            with open_bounded(path) as image:
                images.append(fashion_mnist_look(image, invert))
            sources.append(str(path))
        except PictureTooLarge as error:
            skipped.append(f"{path} ({error})")
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
            skipped.append(f"{path} ({type(error).__name__})")
    if skipped and images:
        rank_zero_warn(f"Skipped {len(skipped)} file(s), unreadable or too large images: {'; '.join(skipped)}")
    if not images:
        listed = "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        raise ConfigError(
            f"--data.predict_path {spec}: no readable PNG, JPEG, BMP, WebP or TIFF image"
            + (f" ({listed})." if skipped else ".")
        )
    return torch.stack(images), sources
