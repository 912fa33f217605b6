"""Synthetic clips for the video tests, in one place: textures, a moving square, flicker.

Frames are (1, 3, H, W) float32 in [0, 1]. Everything is seeded and small, so tests are fast and exact
ground truth is known (the square moves by an integer number of pixels per frame).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def textured(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth multi-scale random texture (features of 4 to 16 px) that flow estimators can lock on to."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.zeros(1, 3, h, w)
    for spacing, weight in ((16, 1.0), (8, 0.7), (4, 0.5)):
        cells = torch.rand(1, 3, h // spacing + 2, w // spacing + 2, generator=gen)
        image += weight * F.interpolate(cells, size=(h, w), mode="bicubic", align_corners=False)
    low = image.amin(dim=(2, 3), keepdim=True)
    high = image.amax(dim=(2, 3), keepdim=True)
    return (image - low) / (high - low)


def square_box(t: int, h: int, w: int, step: int) -> tuple[int, int, int]:
    """(top, left, side) of the square of :func:`moving_square_clip` in frame t."""
    side = min(h, w) // 3
    return (h - side) // 2, w // 8 + step * t, side


def moving_square_clip(n: int, h: int, w: int, step: int = 2, seed: int = 0) -> list[torch.Tensor]:
    """``n`` frames of a textured square moving ``step`` px to the right per frame over a static texture.

    The square's pixels in frame t come from frame t-1 shifted by ``step``; the strip it uncovers on its
    left (``step`` px wide) is visible in t but hidden in t-1: a disocclusion.
    """
    background = textured(h, w, seed)
    top, left, side = square_box(n - 1, h, w, step)
    if left + side > w:
        raise ValueError(f"{n} frames of {step} px steps leave a {w} px wide frame")
    square = textured(side, side, seed + 1)
    frames = []
    for t in range(n):
        top, left, side = square_box(t, h, w, step)
        frame = background.clone()
        frame[..., top : top + side, left : left + side] = square
        frames.append(frame)
    return frames


def square_flows(t: int, s: int, h: int, w: int, step: int) -> torch.Tensor:
    """The exact flow (1, 2, H, W) of frame t towards frame s of :func:`moving_square_clip`."""
    top, left, side = square_box(t, h, w, step)
    flow = torch.zeros(1, 2, h, w)
    flow[:, 0, top : top + side, left : left + side] = float(step * (s - t))
    return flow


def flicker(frames: list[torch.Tensor], amount: float = 0.1, seed: int = 0) -> list[torch.Tensor]:
    """Each frame with its own random per-channel brightness offset in [-amount, amount]: temporal flicker."""
    gen = torch.Generator().manual_seed(seed)
    return [(f + (torch.rand(1, 3, 1, 1, generator=gen) * 2 - 1) * amount).clamp(0, 1) for f in frames]
