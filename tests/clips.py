"""Synthetic clips for the video tests, in one place: textures, a moving square, a panning camera, a running
figure over a panning camera, flicker; and what the video tests measure on stylized frames (content change,
saturated pixels).

Frames are (1, 3, H, W) float32 in [0, 1]. Everything is seeded and small, so tests are fast and exact
ground truth is known (the square moves by an integer number of pixels per frame).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nst.flow import warp
from nst.metrics import frame_warping_error


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


def camera_window(
    background: torch.Tensor, h: int, w: int, t: int, pan: tuple[float, float], zoom: float
) -> torch.Tensor:
    """Frame t of a camera over ``background``: a (h, w) window centred on the background's centre, moved by
    ``t * pan`` px (x, y; in frame pixels) and magnified ``zoom ** t`` times; bilinear."""
    _, _, hb, wb = background.shape
    scale = float(zoom) ** t
    ys = (torch.arange(h, dtype=torch.float32) - (h - 1) / 2) / scale + (hb - 1) / 2 + t * pan[1]
    xs = (torch.arange(w, dtype=torch.float32) - (w - 1) / 2) / scale + (wb - 1) / 2 + t * pan[0]
    if xs.min() < 0 or ys.min() < 0 or xs.max() > wb - 1 or ys.max() > hb - 1:
        raise ValueError(f"frame {t} leaves the {wb}x{hb} background; use a larger one or less motion")
    gy, gx = torch.meshgrid(ys / (hb - 1) * 2 - 1, xs / (wb - 1) * 2 - 1, indexing="ij")
    grid = torch.stack((gx, gy), -1).unsqueeze(0)
    return F.grid_sample(background, grid, mode="bilinear", align_corners=True)


def panning_clip(
    n: int, h: int, w: int, pan: tuple[float, float] = (1.5, 0.5), zoom: float = 1.01,
    background: torch.Tensor | None = None, seed: int = 0,
) -> list[torch.Tensor]:
    """``n`` frames of a camera panning ``pan`` px per frame and zooming in by ``zoom`` per frame over a texture
    (or ``background``, larger than the frame): new content enters at the edges in every frame."""
    background = textured(2 * h, 2 * w, seed) if background is None else background
    return [camera_window(background, h, w, t, pan, zoom) for t in range(n)]


def _segment_distance(px: torch.Tensor, py: torch.Tensor, a: tuple[float, float], b: tuple[float, float]):
    """Distance of each pixel (px, py) to the segment a-b."""
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    u = (((px - ax) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-9)).clamp(0, 1)
    return ((px - ax - u * dx) ** 2 + (py - ay - u * dy) ** 2).sqrt()


def runner_alpha(h: int, w: int, hip: tuple[float, float], height: float, phase: float) -> torch.Tensor:
    """Coverage (1, 1, h, w) in [0, 1] of a running figure: torso, head, and arms and legs swinging with ``phase``
    (radians), its hip at ``hip`` (x, y) px, ``height`` px tall; edges anti-aliased over one pixel."""
    py, px = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    hx, hy = hip
    shoulder = (hx + 0.04 * height, hy - 0.32 * height)
    swing = 0.6 * math.sin(phase)
    parts = [(hip, shoulder, 0.09), ((shoulder[0], shoulder[1] - 0.1 * height),) * 2 + (0.08,)]
    for sign in (1, -1):
        leg, arm = sign * swing, -sign * swing
        parts.append((hip, (hx + 0.42 * height * math.sin(leg), hy + 0.42 * height * math.cos(leg)), 0.045))
        hand = (shoulder[0] + 0.3 * height * math.sin(arm), shoulder[1] + 0.3 * height * math.cos(arm))
        parts.append((shoulder, hand, 0.035))
    alpha = torch.zeros(h, w)
    for a, b, radius in parts:
        alpha = torch.maximum(alpha, (radius * height + 0.5 - _segment_distance(px, py, a, b)).clamp(0, 1))
    return alpha[None, None]


def runner_clip(
    n: int, h: int, w: int, step: float = 3.0, pan: tuple[float, float] = (-1.0, 0.0), zoom: float = 1.0,
    background: torch.Tensor | None = None, skin: torch.Tensor | None = None, seed: int = 0,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A figure running ``step`` px per frame to the right, limbs swinging (a stride every 8 frames), over a
    camera panning ``pan`` px per frame (:func:`panning_clip`): a moving subject over a moving background, with
    disocclusions behind the body and thin limbs that move faster than it. Returns the frames and the figure's
    coverage (1, 1, H, W) per frame. ``skin`` (default a texture) moves with the figure's hip."""
    background = textured(2 * h, 2 * w, seed) if background is None else background
    skin = textured(h, w, seed + 1) if skin is None else skin
    height = 0.7 * h
    frames, alphas = [], []
    for t in range(n):
        hip = (w * 0.2 + step * t, h * 0.5)
        alpha = runner_alpha(h, w, hip, height, 2 * math.pi * t / 8)
        shift = torch.zeros(1, 2, h, w)
        shift[:, 0] = -(hip[0] - w * 0.5)  # the skin's texture travels with the hip
        shift[:, 1] = -(hip[1] - h * 0.5)
        body = warp(skin, shift)
        frames.append(alpha * body + (1 - alpha) * camera_window(background, h, w, t, pan, zoom))
        alphas.append(alpha)
    return frames, alphas


def runner_true_flows(
    alphas: list[torch.Tensor], step: float = 3.0, pan: tuple[float, float] = (-1.0, 0.0), zoom: float = 1.0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The exact backward flow of :func:`runner_clip` (same ``step``, ``pan``, ``zoom``) for t = 1 .. n-1, and
    where it holds: ``(flow (1, 2, H, W) from t to t-1, valid (1, 1, H, W) float)``.

    The figure's skin moves with its hip, ``step`` px right per frame; the background is the camera's window. A
    pixel is valid where it and its source at t-1 are both fully figure or both fully background (not uncovered,
    not an anti-aliased edge) and the source is inside the frame. E_warp under this flow is free of any
    estimator's error, which on a fast, textured figure dominates an estimated flow's E_warp.
    """
    _, _, h, w = alphas[0].shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    cy, cx = (h - 1) / 2, (w - 1) / 2
    result = []
    for t in range(1, len(alphas)):
        # background: frame t's pixel x sees the point frame t-1 showed at cx + (x - cx) / zoom + zoom**(t-1) * pan
        back = torch.stack((cx + (xs - cx) / zoom + zoom ** (t - 1) * pan[0] - xs,
                            cy + (ys - cy) / zoom + zoom ** (t - 1) * pan[1] - ys))[None]
        figure = (alphas[t] > 0.5).float()
        skin = torch.zeros_like(back)
        skin[:, 0] = -step
        flow = figure * skin + (1 - figure) * back
        source = warp(alphas[t - 1], flow)
        sx, sy = xs + flow[0, 0], ys + flow[0, 1]
        inside = ((sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1))[None, None]
        solid = (alphas[t] < 0.02) | (alphas[t] > 0.98)
        same = ((alphas[t] > 0.5) & (source > 0.98)) | ((alphas[t] < 0.5) & (source < 0.02))
        result.append((flow, (inside & solid & same).float()))
    return result


def flows_warping_error(frames: list[torch.Tensor], flows: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean E_warp (:func:`nst.metrics.frame_warping_error`) of ``frames`` under given ``(flow, mask)`` pairs, one
    per frame after the first: e.g. :func:`runner_true_flows`."""
    errors = [float(frame_warping_error(frames[t - 1], frames[t], flow, mask)[0])
              for t, (flow, mask) in enumerate(flows, 1)]
    return sum(errors) / len(errors)


# --- what the clip tests measure on stylized frames ---

CONTENT_LAYER = "block4_conv2"  # relu4_2


@torch.no_grad()
def content_change(encoder, output: torch.Tensor, frame: torch.Tensor, region: torch.Tensor | None = None) -> float:
    """How far a stylized frame strays from its input: mean squared relu4_2 difference over the input's mean squared
    relu4_2 activation (0: the input's content kept), optionally weighted by ``region`` (1, 1, H, W) in [0, 1]."""
    a = encoder(output, [CONTENT_LAYER])[CONTENT_LAYER]
    b = encoder(frame, [CONTENT_LAYER])[CONTENT_LAYER]
    diff, energy = (a - b).pow(2).mean(1, keepdim=True), b.pow(2).mean(1, keepdim=True)
    weight = torch.ones_like(diff) if region is None else F.adaptive_avg_pool2d(region, diff.shape[-2:])
    return float((weight * diff).sum() / (weight * energy).sum())


def saturated_fraction(frame: torch.Tensor) -> float:
    """The fraction of pixels of an 8-bit frame with a channel at 0 or 255."""
    q = frame.clamp(0, 1).mul(255).round()
    return float(((q == 0) | (q == 255)).any(1).float().mean())
