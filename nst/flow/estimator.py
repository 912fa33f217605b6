"""The interface of every optical-flow estimator: a new estimator is one new file with one subclass.

An estimator is called as ``estimator(frame_t, frame_s)`` with two (B, 3, H, W) RGB batches in [0, 1] on
any device and returns the flow of t towards s, (B, 2, H, W) float32 in pixels, on the frames' device
(convention: :mod:`nst.flow`). Its :attr:`name` identifies it and its settings, e.g. in cache folders.
"""

from __future__ import annotations

import abc

import torch


class FlowEstimator(abc.ABC):
    """Base class: validates the frames, calls :meth:`estimate`, checks the result.

    Subclasses set :attr:`name` (short, filesystem-safe, different for settings that change the flow)
    and implement :meth:`estimate`.
    """

    name: str = "flow"

    def __call__(self, frame_t: torch.Tensor, frame_s: torch.Tensor) -> torch.Tensor:
        """The flow of ``frame_t`` towards ``frame_s``, (B, 2, H, W) float32 on ``frame_t``'s device."""
        if frame_t.dim() != 4 or frame_t.shape[1] != 3 or frame_t.shape != frame_s.shape:
            raise ValueError(
                f"{self.name}: frames must be two (B, 3, H, W) batches of one shape, "
                f"got {tuple(frame_t.shape)} and {tuple(frame_s.shape)}"
            )
        with torch.no_grad():
            flow = self.estimate(frame_t.detach(), frame_s.detach().to(frame_t.device))
        b, _, h, w = frame_t.shape
        if flow.shape != (b, 2, h, w):
            raise RuntimeError(f"{self.name} returned a flow of shape {tuple(flow.shape)}, expected {(b, 2, h, w)}")
        return flow.to(device=frame_t.device, dtype=torch.float32)

    @abc.abstractmethod
    def estimate(self, frame_t: torch.Tensor, frame_s: torch.Tensor) -> torch.Tensor:
        """Compute the flow of t towards s for validated frames (same shape and device, no gradient)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
