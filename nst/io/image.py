"""Image files <-> float tensors in [0, 1], shape (1, 3, H, W), RGB.

Every conversion between files and tensors happens here: EXIF orientation, odd modes (grayscale,
palette, RGBA, 16-bit), resizing, and atomic saving.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from nst.errors import NSTError
from nst.io.files import atomic_path

#: VGG (19 and 16 alike) pools five times; smaller images leave nothing for the deepest layers to see.
MIN_SIDE = 32
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image file as an 8-bit RGB PIL image, EXIF orientation applied.

    Grayscale, palette and CMYK images are converted; transparency is composited over white;
    16-bit and float images are rescaled from their full range rather than clipped.
    """
    path = Path(path)
    if not path.is_file():
        raise NSTError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NSTError(f"cannot read image {path}: {exc}") from exc
    return _to_rgb8(img)


def _to_rgb8(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = float(arr.max()) if arr.size else 0.0
        if img.mode.startswith("I;16") or peak > 255:
            top = 65535.0
        else:
            top = 1.0 if img.mode == "F" and peak <= 1 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def fit_long_side(height: int, width: int, long_side: int | None, upscale: bool = True) -> tuple[int, int]:
    """(height, width) scaled so the long side equals ``long_side``, aspect kept, each side at least 1 px.

    The one place this is computed, in torch's (H, W) order. ``upscale=False`` makes ``long_side`` an upper limit
    (larger sizes come down, smaller ones are kept); ``None`` or 0 keeps the size.
    """
    if not long_side or max(height, width) == long_side or (not upscale and max(height, width) < long_side):
        return height, width
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_long_side(img: Image.Image, size: int | None, upscale: bool = True) -> Image.Image:
    """Scale so the long side equals ``size``, keeping the aspect ratio (Lanczos); see :func:`fit_long_side`."""
    height, width = fit_long_side(img.height, img.width, size, upscale)
    return img if (height, width) == (img.height, img.width) else img.resize((width, height), Image.Resampling.LANCZOS)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a (1, 3, H, W) float tensor in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """A (1, 3, H, W) or (3, H, W) tensor in [0, 1] as an RGB PIL image (values are clamped)."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {image.shape[0]}")
        image = image[0]
    arr = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, mode="RGB")


def load_image(
    path: str | os.PathLike, max_size: int | None = None, min_side: int | None = MIN_SIDE, *, upscale: bool = True
) -> torch.Tensor:
    """Load an image file as a (1, 3, H, W) tensor in [0, 1], long side scaled to ``max_size``.

    ``upscale=False`` only scales images down (``max_size`` is then an upper limit). Images with a side
    below ``min_side`` are refused, before resizing (upscaling a 1x1 picture would invent the whole image)
    and after it (a very elongated one): VGG's five poolings need 32 px.
    """
    img = open_rgb(path)
    if min_side and min(img.size) < min_side:
        raise NSTError(
            f"image {path} is {img.width}x{img.height}: both sides must be at least {min_side} px "
            "for VGG's five poolings; use a larger image"
        )
    img = resize_long_side(img, max_size, upscale=upscale)
    if min_side and min(img.size) < min_side:
        raise NSTError(
            f"image {path} is {img.width}x{img.height} after scaling its long side to {max_size} px: "
            f"both sides must be at least {min_side} px; use a larger size (max_size for the content, style.size "
            "for the style) or a less elongated image"
        )
    return pil_to_tensor(img)


def load_input(
    path: str | os.PathLike, max_size: int | None, what: str = "input", *, upscale: bool = False
) -> torch.Tensor:
    """Load a content image: ``max_size`` is an upper limit on its long side, as in Gatys et al. 2016 (larger
    photos are scaled down, smaller ones never up); errors say which input it was (see :func:`load_image`)."""
    try:
        return load_image(path, max_size, upscale=upscale)
    except NSTError as exc:
        raise NSTError(f"{what}: {exc}") from None


def load_style_images(paths: Sequence[str | os.PathLike], size: int | None) -> list[torch.Tensor]:
    """The style image(s) of a run, long side scaled to exactly ``size`` (up or down; ``None``: their own size).

    The style's scale sets the size of the strokes the result gets, so it is a setting of its own
    (``style.size``) rather than the content's limit; errors name them as the style.
    """
    return [load_input(path, size, "style", upscale=True) for path in paths]


def save_image(image: torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write a (1, 3, H, W) tensor in [0, 1] atomically; the format follows the file suffix."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise NSTError(f"output {path} has no image suffix; use one of {', '.join(IMAGE_SUFFIXES)}")
    pil = tensor_to_pil(image)
    with atomic_path(path) as tmp:
        fmt = Image.registered_extensions()[path.suffix.lower()]
        pil.save(tmp, format=fmt, **({"quality": quality} if fmt in ("JPEG", "WEBP") else {}))
    return path
