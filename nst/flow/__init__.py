"""Optical flow: the one flow convention, warping, reliability masks, estimators and the flow cache.

The convention, used by every module of the project:

* A flow is a float32 tensor of shape (B, 2, H, W) in **pixels**. Channel 0 is dx (x grows to the right),
  channel 1 is dy (y grows downwards). Pixel centres sit at integer coordinates: (0, 0) is the centre of
  the top-left pixel and (W-1, H-1) the centre of the bottom-right one.
* **The flow of frame t towards frame s** maps each pixel p of frame t to its position p + flow(p) in
  frame s; so ``frame_t(p) ~ frame_s(p + flow(p))``. Estimators are called as ``estimator(frame_t,
  frame_s)`` and return exactly this.
* **The backward flow of frame t** is its flow towards frame t-1; the forward flow is its flow towards t+1.
* :func:`warp` is a backward warp: ``warp(image_s, flow_ts)(p) = image_s(p + flow_ts(p))``. Hence
  ``warp(stylized[t-1], backward_flow_t)`` is aligned with frame t. This is the true backward warp; the
  seed paper warped with the negated forward flow, an approximation that breaks wherever motion varies.
* A reliability mask for the pair (t, s) lives on frame t's grid, (B, 1, H, W) in [0, 1], 1 where
  ``warp(x_s, flow_ts)`` can be trusted (Ruder et al. 2016; Lai et al. 2018); see :mod:`nst.flow.masks`.

Estimators (one file each, one interface, :class:`nst.flow.estimator.FlowEstimator`): DIS, the default,
and Farneback in :mod:`nst.flow.opencv`; RAFT in :mod:`nst.flow.raft`.
"""

from nst.flow.estimator import FlowEstimator
from nst.flow.masks import long_term_masks, motion_boundaries, occlusions, reliability_mask
from nst.flow.warp import out_of_frame, warp

__all__ = [
    "FlowEstimator",
    "long_term_masks",
    "motion_boundaries",
    "occlusions",
    "out_of_frame",
    "reliability_mask",
    "warp",
]
