"""The flow convention and the backward warp: integer shifts exact, a rotation within 0.5 px, batches."""

from __future__ import annotations

import math

import pytest
import torch

from nst.flow import out_of_frame, warp
from tests.clips import textured


def _shifted(image: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """The image's content moved dx px right and dy px down (wrapping, so the interior is exact)."""
    return torch.roll(image, shifts=(dy, dx), dims=(2, 3))


@pytest.mark.parametrize(("dx", "dy"), [(3, 0), (0, -2), (-4, 5)])
def test_backward_flow_of_a_shift_warps_the_previous_frame_onto_the_current_one(dx: int, dy: int) -> None:
    previous = textured(40, 48, seed=1)
    current = _shifted(previous, dx, dy)  # content moved by (dx, dy) from t-1 to t
    backward = torch.zeros(1, 2, 40, 48)
    backward[:, 0], backward[:, 1] = -dx, -dy  # pixel p of t is at p - (dx, dy) in t-1: channel 0 = dx
    aligned = warp(previous, backward)
    inner = (slice(None), slice(None), slice(6, -6), slice(6, -6))
    torch.testing.assert_close(aligned[inner], current[inner], atol=1e-5, rtol=0)
    assert (warp(previous, -backward)[inner] - current[inner]).abs().max() > 0.05  # the sign matters


def test_warp_by_a_rotation_moves_a_dot_to_within_half_a_pixel() -> None:
    h, w, angle = 64, 64, math.radians(20)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    cx, cy, qx, qy = 31.5, 31.5, 44.0, 25.0
    dot = torch.exp(-((xs - qx) ** 2 + (ys - qy) ** 2) / (2 * 1.5**2)).expand(1, 3, h, w)
    cos, sin = math.cos(angle), math.sin(angle)
    # flow of t towards s for "t is s rotated by -angle": p maps to R(angle)(p - c) + c in s
    rx, ry = cos * (xs - cx) - sin * (ys - cy) + cx, sin * (xs - cx) + cos * (ys - cy) + cy
    flow = torch.stack((rx - xs, ry - ys)).unsqueeze(0)
    out = warp(dot, flow)[0, 0]
    weight = out / out.sum()
    found = ((weight * xs).sum().item(), (weight * ys).sum().item())
    # where the dot must be in t: the p with R(p - c) + c = q, i.e. p = R^T (q - c) + c
    expect = (cos * (qx - cx) + sin * (qy - cy) + cx, -sin * (qx - cx) + cos * (qy - cy) + cy)
    assert math.dist(found, expect) < 0.5
    assert math.dist(found, (qx, qy)) > 4  # it did move (|q - c| = 14 px, 20 degrees)
    coords = warp(torch.stack((xs, ys)).unsqueeze(0), flow)  # warping the coordinates gives p + flow(p)
    inside = ~out_of_frame(flow)[0, 0]
    assert (coords[0, 0][inside] - rx[inside]).abs().max() < 0.5
    assert (coords[0, 1][inside] - ry[inside]).abs().max() < 0.5


def test_out_of_frame_marks_the_pixels_whose_source_is_outside() -> None:
    flow = torch.zeros(1, 2, 8, 10)
    flow[:, 0] = 3.0  # every pixel looks 3 px to the right
    outside = out_of_frame(flow)
    assert outside.shape == (1, 1, 8, 10) and outside.dtype == torch.bool
    assert outside[..., 7:].all() and not outside[..., :7].any()


def test_out_of_frame_forgives_half_a_pixel_past_the_border() -> None:
    flow = torch.zeros(1, 2, 8, 10)
    flow[:, 0] = 0.4  # the last column samples 0.4 px past its own centre: still on that pixel
    assert not out_of_frame(flow).any()
    flow[:, 0] = 0.6
    assert out_of_frame(flow)[..., 9].all() and not out_of_frame(flow)[..., :9].any()
    flow[:, 0], flow[:, 1] = 0.0, -0.45  # the first row, upwards
    assert not out_of_frame(flow).any() and out_of_frame(flow, tolerance=0.0)[..., 0, :].all()


def test_warp_batches_broadcasts_one_flow_and_keeps_dtype() -> None:
    images = torch.cat([textured(24, 32, seed=s) for s in range(3)]).double()
    flows = torch.randn(3, 2, 24, 32) * 2
    batch = warp(images, flows)
    assert batch.dtype == torch.float64 and batch.shape == images.shape
    for i in range(3):
        torch.testing.assert_close(batch[i : i + 1], warp(images[i : i + 1], flows[i : i + 1]))
    shared = warp(images, flows[:1])
    torch.testing.assert_close(shared[2:], warp(images[2:], flows[:1]))
    torch.testing.assert_close(warp(images, torch.zeros(1, 2, 24, 32)), images, atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        warp(images, torch.zeros(2, 2, 24, 32))
