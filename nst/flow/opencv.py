"""OpenCV flow estimators on gray uint8 frames: DIS (the default) and Farneback (the seed paper's).

DIS: Kroeger et al., *Fast Optical Flow using Dense Inverse Search* (ECCV 2016), OpenCV's presets.
Farneback: *Two-Frame Motion Estimation Based on Polynomial Expansion* (SCIA 2003). Both return OpenCV's
flow of the first image towards the second, which is our convention (:mod:`nst.flow`) as it is.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from nst.errors import NSTError
from nst.flow.estimator import FlowEstimator

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def gray_uint8(frames: torch.Tensor) -> list[np.ndarray]:
    """(B, 3, H, W) RGB in [0, 1] -> B gray (H, W) uint8 arrays: OpenCV's RGB2GRAY luma (ITU-R 601), rounded.

    Done on the host in NumPy/OpenCV, single-threaded and cheaper here than a chain of torch element-wise ops.
    """
    rgb = frames.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    grays = (cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY) for img in rgb)
    return [np.clip(gray * 255.0 + 0.5, 0, 255).astype(np.uint8) for gray in grays]


def _to_tensor(flows: list[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.stack(flows).transpose(0, 3, 1, 2))).to(device)


class DISFlow(FlowEstimator):
    """OpenCV's Dense Inverse Search flow, fast on CPUs; ``preset``: ultrafast | fast | medium."""

    def __init__(self, preset: str = "medium", scale: float = 1.0):
        if preset not in DIS_PRESETS:
            raise NSTError(f"flow.preset must be one of {', '.join(DIS_PRESETS)}, got {preset!r}")
        if not 1.0 <= float(scale) <= 4.0:
            raise NSTError(f"flow.scale must be in [1, 4], got {scale}")
        self.preset, self.scale = preset, float(scale)
        self.name = f"dis-{preset}" if self.scale == 1 else f"dis-{preset}-x{self.scale:g}"

    def estimate(self, frame_t: torch.Tensor, frame_s: torch.Tensor) -> torch.Tensor:
        """DIS on the gray frames, enlarged ``scale`` times first (bicubic) when ``scale > 1``: DIS matches 8 px
        patches, too coarse for thin, fast parts (limbs) of a small frame; the flow is then shrunk back."""
        h, w = frame_t.shape[-2:]
        if self.scale != 1:
            size = (round(h * self.scale), round(w * self.scale))
            frame_t, frame_s = (F.interpolate(f.float(), size=size, mode="bicubic", align_corners=False).clamp(0, 1)
                                for f in (frame_t, frame_s))
        dis = cv2.DISOpticalFlow_create(DIS_PRESETS[self.preset])  # per call: safe from any thread
        flows = [dis.calc(a, b, None) for a, b in zip(gray_uint8(frame_t), gray_uint8(frame_s), strict=True)]
        flow = _to_tensor(flows, frame_t.device)
        if self.scale != 1:
            big_h, big_w = flow.shape[-2:]
            flow = F.interpolate(flow, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
            flow = flow * torch.tensor([w / big_w, h / big_h], device=flow.device).view(1, 2, 1, 1)
        return flow


class FarnebackFlow(FlowEstimator):
    """OpenCV's Farneback flow with the arguments of ``cv2.calcOpticalFlowFarneback`` (its usual defaults)."""

    def __init__(
        self,
        pyr_scale: float = 0.5,
        levels: int = 3,
        winsize: int = 15,
        iterations: int = 3,
        poly_n: int = 5,
        poly_sigma: float = 1.2,
    ):
        if not 0 < pyr_scale < 1 or levels < 1 or winsize < 1 or iterations < 1 or poly_n not in (5, 7):
            raise NSTError(
                "flow: Farneback needs 0 < pyr_scale < 1, levels/winsize/iterations >= 1 and poly_n 5 or 7, got "
                f"pyr_scale={pyr_scale}, levels={levels}, winsize={winsize}, iterations={iterations}, poly_n={poly_n}"
            )
        self.args = (float(pyr_scale), int(levels), int(winsize), int(iterations), int(poly_n), float(poly_sigma))
        defaults = (0.5, 3, 15, 3, 5, 1.2)
        self.name = "farneback" if self.args == defaults else "farneback-" + "-".join(f"{a:g}" for a in self.args)

    def estimate(self, frame_t: torch.Tensor, frame_s: torch.Tensor) -> torch.Tensor:
        pairs = zip(gray_uint8(frame_t), gray_uint8(frame_s), strict=True)
        flows = [cv2.calcOpticalFlowFarneback(a, b, None, *self.args, 0) for a, b in pairs]
        return _to_tensor(flows, frame_t.device)
