"""Luminance-only style transfer: keep the content's colours (Gatys, Bethge, Hertzmann & Shechtman 2016,
"Preserving color in neural artistic style transfer", section 2.2).

Content and style are reduced to their luminance (YIQ's Y, shown as a gray RGB image so VGG can read it),
the style's luminance is matched to the content's mean and standard deviation (eq. 1 of that paper), the
transfer runs on luminance only, and the result's Y is recombined with the content's I and Q.
All images are (B, 3, H, W) RGB tensors in [0, 1].
"""

from __future__ import annotations

import torch

#: RGB -> YIQ (NTSC), the colour space of the paper.
_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=torch.float64,
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _mix(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    matrix = matrix.to(device=image.device, dtype=torch.float32)
    return torch.einsum("ij,bjhw->bihw", matrix, image.float())


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> YIQ (Y in [0, 1]; I, Q signed)."""
    return _mix(image, _RGB_TO_YIQ)


def yiq_to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    """YIQ -> RGB (not clamped; exact inverse of :func:`rgb_to_yiq`)."""
    return _mix(yiq, _YIQ_TO_RGB)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """The Y channel, (B, 1, H, W)."""
    return rgb_to_yiq(image)[:, :1]


def gray_rgb(lum: torch.Tensor) -> torch.Tensor:
    """A (B, 1, H, W) luminance as a gray (B, 3, H, W) RGB image in [0, 1], the input VGG expects."""
    return lum.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def luminance_only(image: torch.Tensor) -> torch.Tensor:
    """The image's luminance as a gray RGB image: what the content becomes for luminance-only transfer."""
    return gray_rgb(luminance(image))


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The style's luminance shifted and scaled to the content's mean and std (Gatys et al. 2016b, eq. 1),
    as a gray RGB image, so the style's brightness statistics do not leak into the result."""
    ls, lc = luminance(style), luminance(content)
    std_s = ls.std().clamp_min(1e-6)
    matched = (ls - ls.mean()) * (lc.std() / std_s) + lc.mean()
    return gray_rgb(matched)


def restore_color(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylized image's luminance with the content's chrominance (I, Q), clamped to [0, 1]."""
    yiq = rgb_to_yiq(content)
    yiq = torch.cat([luminance(stylized.to(content.device)), yiq[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)
