"""Fashion-MNIST test images re-rendered as a shop's catalogue photos: a dark product on a light background, RGB,
200-600 px, JPEG or PNG, with margins, off-centre, uneven light backgrounds, sensor noise, JPEG artefacts or
transparency; and as a student's own photos, on backgrounds that are not white: the whole picture under a tinted
light (an off-white, warm or cool cast), the product laid on a grey card, or on coloured paper. Shared by the tests
and ``benchmarks/own_photos.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

WHITE_VARIANTS = ("tight", "margin", "uneven", "noisy_jpeg", "alpha")
TINTED_VARIANTS = ("tinted", "grey", "coloured")
VARIANTS = WHITE_VARIANTS + TINTED_VARIANTS


def catalogue_photo(image: torch.Tensor, variant: str, rng: np.random.Generator) -> Image.Image:
    """One photo of a ``[28, 28]`` uint8 Fashion-MNIST image (a light product on black)."""
    side = int(rng.integers(200, 600))
    product = Image.fromarray(255 - image.numpy()).resize((side, side), Image.BICUBIC)  # dark on white
    pixels = np.asarray(product, dtype=np.float64)
    if variant != "tight":  # white margins of 10-60 % per side, uneven: the product off-centre
        top, bottom, left, right = (int(side * rng.uniform(0.1, 0.6)) for _ in range(4))
        pixels = np.pad(pixels, ((top, bottom), (left, right)), constant_values=255.0)
    if variant == "uneven":  # a light background darkening towards one corner (a lamp to one side)
        h, w = pixels.shape
        shade = 255.0 - 30.0 * (np.linspace(0, 1, h)[:, None] + np.linspace(0, 1, w)[None, :]) / 2
        pixels = np.minimum(pixels, shade)
    if variant == "noisy_jpeg":
        pixels = pixels + rng.normal(0, 6, pixels.shape)
    if variant in TINTED_VARIANTS:
        return Image.fromarray(on_a_background(pixels, variant, rng).clip(0, 255).round().astype(np.uint8), "RGB")
    gray = pixels.clip(0, 255).round().astype(np.uint8)
    if variant == "alpha":  # a cut-out product: transparent where the background was
        alpha = np.where(gray > 245, 0, 255).astype(np.uint8)
        return Image.fromarray(np.dstack([gray, gray, gray, alpha]), "RGBA")
    return Image.fromarray(gray).convert("RGB")


def on_a_background(pixels: np.ndarray, variant: str, rng: np.random.Generator) -> np.ndarray:
    """``[H, W, 3]``: the dark-on-white ``pixels`` under a tinted light (every pixel's reflectance times the light's
    colour: off-white 75-95 % per channel), or the product laid on a grey card (40-80 %) or on coloured paper (a
    pastel, each channel 55-95 %): there the product keeps its own greys and its faint parts blend into the card."""
    reflectance = pixels[..., None] / 255.0
    if variant == "tinted":
        return reflectance * 255.0 * rng.uniform(0.75, 0.95, 3)
    card = 255.0 * (np.full(3, rng.uniform(0.4, 0.8)) if variant == "grey" else rng.uniform(0.55, 0.95, 3))
    product = np.clip((1.0 - reflectance) * 4.0, 0.0, 1.0)  # how much of the product covers the pixel
    return product * pixels[..., None] + (1.0 - product) * card


def write_catalogue_photos(folder: Path, images: torch.Tensor, seed: int = 0) -> list[Path]:
    """One photo per image, the variants in turn; JPEG for the noisy ones, PNG else. Returns the paths in order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(images):
        variant = VARIANTS[index % len(VARIANTS)]
        path = folder / f"photo_{index:04d}_{variant}.{'jpg' if variant == 'noisy_jpeg' else 'png'}"
        catalogue_photo(image, variant, rng).save(path, quality=70)
        paths.append(path)
    return paths
