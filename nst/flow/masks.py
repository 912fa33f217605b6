"""Reliability masks of a flow (Ruder et al. 2016, Sec. 3.1; used the same way by Lai et al. 2018).

For a pair of frames (t, s), ``flow_ts`` is the flow of t towards s (it warps frame s onto t) and
``flow_st`` the opposite one. All masks live on frame t's grid, shape (B, 1, H, W). A pixel of t is
unreliable when any of these holds:

* **disocclusion** (forward-backward check): with w_b = flow_ts(x) and w_f = flow_st(x + w_b),
  |w_f + w_b|^2 > 0.01 (|w_f|^2 + |w_b|^2) + 0.5;
* **motion boundary**: |grad u|^2 + |grad v|^2 > 0.01 |w_b|^2 + 0.002, with (u, v) = flow_ts and central
  differences (one-sided at the image border);
* **out of frame**: x + w_b lies outside frame s.

:func:`reliability_mask` combines them into weights in [0, 1]: 1 reliable, 0 not.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from nst.flow.warp import check_flow, out_of_frame, warp


def occlusions(flow_ts: torch.Tensor, flow_st: torch.Tensor) -> torch.Tensor:
    """Bool (B, 1, H, W): pixels of t failing the forward-backward consistency check (disoccluded in s)."""
    check_flow(flow_ts, "flow_ts")
    check_flow(flow_st, "flow_st")
    if flow_ts.shape != flow_st.shape:
        raise ValueError(f"flow_ts {tuple(flow_ts.shape)} and flow_st {tuple(flow_st.shape)} differ in shape")
    back = flow_ts.float()
    fwd = warp(flow_st.float().to(back.device), back)  # w_f(x + w_b), on t's grid
    mismatch = (fwd + back).pow(2).sum(1, keepdim=True)
    scale = fwd.pow(2).sum(1, keepdim=True) + back.pow(2).sum(1, keepdim=True)
    return mismatch > 0.01 * scale + 0.5


def motion_boundaries(flow: torch.Tensor) -> torch.Tensor:
    """Bool (B, 1, H, W): pixels where the flow changes fast compared with its size (Ruder et al. 2016)."""
    check_flow(flow)
    flow = flow.float()
    if min(flow.shape[-2:]) < 2:
        return torch.zeros_like(flow[:, :1], dtype=torch.bool)
    d_dy, d_dx = torch.gradient(flow, dim=(2, 3))
    variation = (d_dx.pow(2) + d_dy.pow(2)).sum(1, keepdim=True)
    return variation > 0.01 * flow.pow(2).sum(1, keepdim=True) + 0.002


def reliability_mask(flow_ts: torch.Tensor, flow_st: torch.Tensor) -> torch.Tensor:
    """Weights (B, 1, H, W) float32 in [0, 1] on t's grid: 1 where ``warp(x_s, flow_ts)`` can be trusted.

    0 at disocclusions (forward-backward check), motion boundaries and pixels that flow out of the frame.
    """
    unreliable = occlusions(flow_ts, flow_st) | motion_boundaries(flow_ts) | out_of_frame(flow_ts)
    return (~unreliable).float()


def photometric_mismatch(
    frame_t: torch.Tensor, frame_s: torch.Tensor, flow_ts: torch.Tensor, threshold: float = 0.05
) -> torch.Tensor:
    """Bool (B, 1, H, W): pixels of t whose colour differs from frame s warped by ``flow_ts`` by more than
    ``threshold`` (largest channel difference, RGB in [0, 1], averaged over 3x3 pixels so that the sampling noise
    of single pixels on sharp edges does not count): the flow there is wrong, whatever the forward-backward
    check says. Isolated flagged pixels would be free pixels among tied ones, the ones that run to extremes.

    The check the flow itself rests on (brightness constancy), on the *input* frames. A smooth flow that misses a
    moving limb is wrong in both directions alike and passes the forward-backward check, but the warped input does
    not match there; input warping errors mark unreliable flow in the confidence masks of Chen et al. 2017
    (*Coherent Online Video Style Transfer*).
    """
    check_flow(flow_ts, "flow_ts")
    warped = warp(frame_s.float(), flow_ts.float())
    error = (frame_t.float() - warped).abs().amax(1, keepdim=True)
    return F.avg_pool2d(error, 3, 1, 1, count_include_pad=False) > threshold


def long_term_masks(masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Ruder et al. 2016, eq. 7: masks of long-term terms, nearest frame first, that never count a pixel twice.

    ``masks[k]`` is the reliability mask towards the k-th nearest previous frame (e.g. t-1, t-2, t-4). Each
    is reduced by what the nearer ones already cover: ``c_long_j = clamp(c_j - sum_{k<j} c_long_k, 0, 1)``.
    For binary masks this is the paper's rule; the sum over j never exceeds 1.
    """
    result: list[torch.Tensor] = []
    covered: torch.Tensor | None = None
    for mask in masks:
        mask = mask.float()
        reduced = mask if covered is None else (mask - covered).clamp(0.0, 1.0)
        result.append(reduced)
        covered = reduced if covered is None else covered + reduced
    return result
