"""Your own pictures made into what Fashion-MNIST's images are before a model trained on it sees them.

Fashion-MNIST's images are 28×28 grayscale, a light product on a black background, made from shop photos by a fixed
recipe (Xiao et al. 2017; the zalandoresearch/fashion-mnist README): trim the edges close to the corner pixels'
colour (5 % threshold), resize the longest edge to 28, sharpen (Gaussian, radius and sigma 1.0), extend the shorter
edge to 28 with the object centred, negate, 8-bit grayscale. A photo gets the same recipe: the background's level
and tint, read from the picture's edge (robust to JPEG and sensor noise, blur and uneven light), removed first (under
a tinted light a white balance makes an off-white or tinted background white; a grey card or coloured paper under a
darker product becomes white and the product keeps its own greys; a dark background under a lighter product becomes
black), then grayscale (any mode: RGB, RGBA onto white, palette, 16-bit), inverted where the background is
light (``invert="auto"``). The data module
then resizes to the model's input size exactly as it does the dataset's images.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from PIL import Image, ImageFilter, UnidentifiedImageError

from cnn_lightning.errors import ConfigError

SIZE = 28
MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # 89,478,485: PIL's decompression-bomb bound (a 9459 × 9459 picture)
TRIM_THRESHOLD = 0.05 * 255  # the dataset's: edges within 5 % of the corner colour are trimmed
WORKING_SIDE = 1024  # a larger picture is shrunk to this first: its 28 × 28 result is the same, its memory bounded
Invert = bool | Literal["auto"]
Background = Literal["dark", "card", "tinted light"]


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


def to_channels(image: Image.Image) -> np.ndarray:
    """``[H, W, C]`` float array in [0, 255] from any PIL mode: one channel for grey pictures (16-bit scaled down),
    RGB for the rest, transparency composited onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        return (array * (255.0 / max(array.max(), 1.0)) if array.max() > 255 else array)[..., None]
    if image.mode in ("P", "PA", "LA", "RGBA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if image.mode in ("L", "1"):
        return np.asarray(image.convert("L"), dtype=np.float64)[..., None]
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def edge(array: np.ndarray) -> np.ndarray:
    """The pixels of a band along the picture's four sides (2 % of its shorter side), one row per pixel."""
    h, w = array.shape[:2]
    band = max(1, min(h, w) // 50)
    sides = (array[:band], array[-band:], array[:, :band], array[:, -band:])
    return np.concatenate([side.reshape(-1, *array.shape[2:]) for side in sides])


def balanced_gray(channels: np.ndarray) -> np.ndarray:
    """``[H, W]`` grey levels with the background's level and tint removed: under a tinted light, as a white balance
    does, each channel divided by the background's own (read from the edge), so that an off-white or tinted
    background becomes white; a product laid on a grey card or coloured paper keeps its own greys and the card becomes
    white (:func:`card`), coloured paper seen through the product's faint edges taken out too (:func:`unblended`); on
    a dark background its level is subtracted, so that it becomes black; grey by PIL's luma (ITU-R 601-2).
    Fashion-MNIST's backgrounds are exactly black after negation, and a model trained on them reads a grey one as
    part of the product."""
    level, tolerance = background_colour(channels)
    kind = background_kind(channels, level, tolerance)
    if kind == "card":
        return np.where(card(channels, level, tolerance), 255.0, luma(unblended(channels, level))).clip(0, 255)
    if kind == "tinted light":
        balanced = channels * (255.0 / np.maximum(level, 1.0))
    else:
        balanced = (channels - level) * (255.0 / np.maximum(255.0 - level, 1.0))
    return luma(balanced).clip(0, 255)


def luma(channels: np.ndarray) -> np.ndarray:
    """Grey levels of ``[..., C]`` colours by PIL's luma (ITU-R 601-2); a single channel as it is."""
    return channels @ (np.array([0.299, 0.587, 0.114]) if channels.shape[-1] == 3 else np.ones(1))


def background_kind(channels: np.ndarray, level: np.ndarray, tolerance: float) -> Background:
    """What lies behind the product: a ``"dark"`` background under a lighter product, or under a darker one a
    ``"card"`` (grey, coloured paper: :func:`on_a_card`) or the product's own background under a ``"tinted light"``."""
    gray = luma(channels)
    if not darker_product(gray, float(luma(level)), tolerance):
        return "dark"
    return "card" if on_a_card(channels, gray, level, tolerance) else "tinted light"


def background_colour(channels: np.ndarray) -> tuple[np.ndarray, float]:
    """The background's colour, read from the picture's edge, and how far from it a pixel still counts as
    background (:func:`background_tolerance` of how much the edge varies)."""
    ring = edge(channels)
    level = np.median(ring, axis=0)
    return level, background_tolerance(float(np.percentile(np.abs(ring - level).max(axis=-1), 95)))


def on_a_card(channels: np.ndarray, gray: np.ndarray, level: np.ndarray, tolerance: float) -> bool:
    """Whether a product darker than its background was laid on a card (grey, coloured) rather than photographed
    under a tinted light. Under a light every pixel is the light's colour times the product's: on a coloured
    background the product's colours lean as the background's do, on coloured paper they keep their own (a grey
    product stays grey). Where the background is neutral colour cannot tell: under a light every part of the product
    is at most as bright as the background, on a card its light parts (more than 5 % of what differs from the card)
    are brighter than the card."""
    gray_level = float(np.median(edge(gray)))
    product = channels[(gray < gray_level - tolerance) & (gray > 20)]  # clearly the product, bright enough to lean
    if coloured(level) and len(product) > 16:
        leaning = np.median(product / product.mean(axis=-1, keepdims=True), axis=0)
        return bool(np.linalg.norm(leaning - 1) < np.linalg.norm(leaning - level / level.mean()))
    differing = gray[np.abs(gray - gray_level) > tolerance]
    return bool(differing.size and np.mean(differing > gray_level) > 0.05)


def coloured(level: np.ndarray) -> bool:
    """Whether a background of colour ``level`` (one value per channel) is coloured: a channel more than 5 % off
    the mean of the three, beyond what JPEG and a sensor's noise put into a grey card."""
    return len(level) == 3 and bool(np.abs(level / max(float(level.mean()), 1.0) - 1).max() > 0.05)


def unblended(channels: np.ndarray, level: np.ndarray) -> np.ndarray:
    """``channels`` with coloured paper seen through a product's faint parts replaced by white paper: a pixel's
    colour that leans as the paper's does is that share of paper (alpha matting with a known background and a grey
    product), and that share becomes white. A grey card leaves no colour to tell by: unchanged."""
    if not coloured(level):
        return channels
    paper = level - level.mean()
    share = ((channels - channels.mean(axis=-1, keepdims=True)) @ paper / float(paper @ paper)).clip(0, 1)
    return channels + share[..., None] * (255.0 - level)


def card(channels: np.ndarray, level: np.ndarray, tolerance: float) -> np.ndarray:
    """``[H, W]`` bool: where the card shows, its colour within ``tolerance`` and reached from the picture's edge
    without crossing the product (a part of the product as grey as the card stays the product's). The reach is
    traced on blocks of at most 1/128 of the picture's longer side, one block beyond it, then pixel by pixel."""
    near = np.abs(channels - level).max(axis=-1) <= tolerance
    h, w = near.shape
    scale = min(1.0, 128 / max(h, w))
    blocks = (max(1, round(w * scale)), max(1, round(h * scale)))
    open_block = np.asarray(Image.fromarray(near.astype(np.uint8) * 255).resize(blocks, Image.BOX)) == 255
    reached = np.zeros_like(open_block)
    reached[[0, -1], :], reached[:, [0, -1]] = open_block[[0, -1], :], open_block[:, [0, -1]]
    while True:
        grown = _grown(reached) & open_block
        if np.array_equal(grown, reached):
            break
        reached = grown
    full = Image.fromarray(_grown(reached).astype(np.uint8) * 255).resize((w, h), Image.NEAREST)
    return (np.asarray(full) == 255) & near


def _grown(mask: np.ndarray) -> np.ndarray:
    """``mask`` and its four neighbours."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def darker_product(gray: np.ndarray, level: float, tolerance: float) -> bool:
    """Whether the product is darker than its background (a shop photo) rather than lighter (Fashion-MNIST's own
    look), judged by how far its pixels (those beyond ``tolerance`` of the background's level) reach below and above
    the background, each as a share of the room there is: on a mid-grey card a product's faint parts lie on one side,
    its body on the other, and neither the level alone nor their median can tell."""
    differing = gray[np.abs(gray - level) > tolerance]
    if not differing.size:
        return level > 127.5
    darkest, lightest = np.percentile(differing, [2, 98])
    return bool((level - darkest) / max(level, 1.0) > (lightest - level) / max(255.0 - level, 1.0))


def background_tolerance(spread: float) -> float:
    """How far from the background's level a pixel still counts as background: 5 % (Xiao et al.'s trim threshold),
    or twice how much the background varies along the edge, whichever is more."""
    return max(TRIM_THRESHOLD, 2 * spread)


def background(gray: np.ndarray) -> tuple[float, float]:
    """The background's grey level, read from the picture's edge (the corner colour the dataset's trim compares
    with), and how much it varies along the edge (noise, JPEG, an uneven light)."""
    ring = edge(gray)
    level = float(np.median(ring))
    return level, float(np.percentile(np.abs(ring - level), 95))


def trimmed(gray: np.ndarray, level: float, spread: float) -> np.ndarray:
    """``gray`` cropped to what differs from the background by more than 5 % (Xiao et al.'s trim threshold), or by
    more than the background varies along the edge; a median filter first, so that single noisy pixels do not count."""
    smooth = np.asarray(Image.fromarray(gray.clip(0, 255).astype(np.uint8)).filter(ImageFilter.MedianFilter(3)))
    foreground = np.abs(smooth.astype(np.float64) - level) > background_tolerance(spread)
    rows, cols = np.flatnonzero(foreground.any(axis=1)), np.flatnonzero(foreground.any(axis=0))
    if not len(rows):
        return gray
    return gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fashion_mnist_look(image: Image.Image, invert: Invert = "auto") -> torch.Tensor:
    """A ``[28, 28]`` uint8 tensor made as Fashion-MNIST's images were (Xiao et al. 2017): grayscale, edges close to
    the background trimmed, the longest edge resized to 28, sharpened (Gaussian, radius and sigma 1), the shorter
    edge extended to 28 with the object centred, negated where the background is light (``invert="auto"``), and its
    brightest pixel at 255, as in 92 % of the dataset's test images (254 or more in 99 %): a product photographed on
    a grey card keeps its own greys, which the white balance leaves short of the dataset's range."""
    gray = balanced_gray(to_channels(image))
    level, spread = background(gray)
    negate = invert is True or (invert == "auto" and level > 127.5)  # a light background: a dark object, negated
    if gray.shape == (SIZE, SIZE):  # already made as the dataset's images are: taken as it is
        pixels = gray.clip(0, 255).round().astype(np.uint8)
        return torch.from_numpy(255 - pixels if negate else pixels)
    pixels = fitted(trimmed(gray, level, spread), level).astype(np.float64)
    shown = 255.0 - pixels if negate else pixels
    shown *= 255.0 / max(float(shown.max()), 1.0)
    return torch.from_numpy(shown.round().astype(np.uint8))


def fitted(gray: np.ndarray, level: float) -> np.ndarray:
    """``gray`` with its longest edge resized to 28 and sharpened, centred on a 28 × 28 canvas of the background;
    where the margin is odd its extra pixel goes before the object, as in the dataset's images (a photo of a test
    image made so lies 1.3 to 5 grey levels closer to it on average than with the extra pixel after)."""
    h, w = gray.shape
    size = (max(1, round(w * SIZE / max(h, w))), max(1, round(h * SIZE / max(h, w))))
    resized = Image.fromarray(gray.clip(0, 255).round().astype(np.uint8)).resize(size, Image.LANCZOS)
    resized = resized.filter(ImageFilter.UnsharpMask(radius=1, percent=50, threshold=0))
    canvas = Image.new("L", (SIZE, SIZE), round(level))
    canvas.paste(resized, ((SIZE - size[0] + 1) // 2, (SIZE - size[1] + 1) // 2))  # an odd margin's extra pixel first
    return np.array(canvas, dtype=np.uint8)


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
