"""Backward warping by a flow field, and the pixels a flow sends out of the frame (convention: :mod:`nst.flow`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

PADDING_MODES = ("border", "zeros", "reflection")


def check_flow(flow: torch.Tensor, what: str = "flow") -> None:
    """Raise ``ValueError`` unless ``flow`` is a (B, 2, H, W) floating-point tensor."""
    if flow.dim() != 4 or flow.shape[1] != 2 or not flow.is_floating_point():
        raise ValueError(f"{what} must be a float tensor (B, 2, H, W), got {tuple(flow.shape)} {flow.dtype}")


def sample_positions(flow: torch.Tensor) -> torch.Tensor:
    """The positions p + flow(p) in pixels, (B, 2, H, W) float32: where each pixel of frame t lands in s."""
    check_flow(flow)
    _, _, h, w = flow.shape
    ys = torch.arange(h, device=flow.device, dtype=torch.float32)
    xs = torch.arange(w, device=flow.device, dtype=torch.float32)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y)).unsqueeze(0) + flow.float()


def warp(image: torch.Tensor, flow: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Backward warp: ``out(p) = image(p + flow(p))``, bilinear, on the flow's grid (Ruder et al. 2016).

    ``image`` (B, C, H, W) is frame s, ``flow`` (B, 2, H, W) the flow of frame t towards s, so the result
    is aligned with frame t. A flow batch of 1 is broadcast over the images. Pixel centres are integers,
    which is ``grid_sample``'s ``align_corners=True``. Samples outside the frame take the border value
    (``padding_mode="border"``, the default, or ``zeros``/``reflection``); :func:`out_of_frame` marks them.
    The result has the image's dtype and device.
    """
    check_flow(flow)
    if image.dim() != 4 or image.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape)} and flow {tuple(flow.shape)} must be (B, C, H, W) of one size")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    if flow.shape[0] != image.shape[0]:
        if flow.shape[0] != 1:
            raise ValueError(f"{image.shape[0]} images need 1 or {image.shape[0]} flows, got {flow.shape[0]}")
        flow = flow.expand(image.shape[0], -1, -1, -1)
    _, _, h, w = flow.shape
    pos = sample_positions(flow.to(image.device))
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=image.device).view(1, 2, 1, 1)
    grid = (pos * scale - 1.0).permute(0, 2, 3, 1)
    dtype = image.dtype if image.is_floating_point() else torch.float32
    out = F.grid_sample(image.to(dtype), grid.to(dtype), mode="bilinear", padding_mode=padding_mode, align_corners=True)
    return out


#: How far (px) past the outermost pixel centres a sample may land and still count as inside the frame: the
#: frame's pixels cover half a pixel beyond their centres, and a flow estimator's sub-pixel noise at the border
#: must not flag a whole edge row or column of a static or slowly panning shot.
OUT_OF_FRAME_TOLERANCE = 0.5


def out_of_frame(flow: torch.Tensor, tolerance: float = OUT_OF_FRAME_TOLERANCE) -> torch.Tensor:
    """Bool (B, 1, H, W): True where p + flow(p) falls outside the frame, i.e. where the warp has no data.

    A sample up to ``tolerance`` px beyond the outermost pixel centres is inside (it lies on that pixel).
    """
    pos = sample_positions(flow)
    _, _, h, w = flow.shape
    x, y = pos[:, 0:1], pos[:, 1:2]
    low, high_x, high_y = -tolerance, w - 1 + tolerance, h - 1 + tolerance
    return (x < low) | (x > high_x) | (y < low) | (y > high_y)
