"""The video methods as recipes: each is a choice of start image and loss terms for frames after the first.

* ``naive``: every frame on its own, from the content frame (Gatys et al. 2016 per frame).
* ``prev_style``: from the content frame, with stylized frame t-1 as the style image (the seed paper's first
  idea, kept for comparison).
* ``temporal_init``: from stylized frame t-1, warped (Ruder et al. 2016's initialisation).
* ``temporal_loss``: from the content frame, plus an unmasked temporal loss against warped t-1.
* ``temporal``: both, unmasked (the seed paper's final method, with the correct backward warp).
* ``consistent``: Ruder et al. 2016 in full: the warped frame with its unreliable pixels from the content frame,
  a masked temporal loss, long-term terms with closest-first masks, and multi-pass; its masks add a photometric
  check of the input frames (``video.photometric``) to Ruder's, which catches the flow's errors on moving subjects.

"Warped" is always the true backward warp of :mod:`nst.flow`: ``warp(stylized[t-1], flow(t -> t-1))``, with
the flow computed on the input frames. Masks are the reliability masks of :mod:`nst.flow.masks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nst.errors import NSTError

METHODS = ("naive", "prev_style", "temporal_init", "temporal_loss", "temporal", "consistent")


@dataclass(frozen=True)
class Recipe:
    """What a method does for a frame that has a processed neighbour.

    Attributes:
        warped_init: start from the previous stylized frame, warped by the flow (Ruder et al. 2016, Sec. 3).
        temporal_loss: add ``w_T * L_temp`` against the warped previous stylized frame(s).
        masked: weight the loss by reliability masks (Ruder's and the photometric check), and fill the unreliable
            pixels of the warped start image from the content frame (no black or smeared disocclusions).
        previous_as_style: use the previous stylized frame as the style image (the seed paper's first idea).
        full: honour ``long_term`` offsets and ``passes`` (Ruder et al. 2016, Sec. 3.2 and 3.3).
    """

    warped_init: bool = False
    temporal_loss: bool = False
    masked: bool = False
    previous_as_style: bool = False
    full: bool = False

    @property
    def needs_flow(self) -> bool:
        """Whether the optimisation itself uses flow (every method logs a per-frame E_warp, which does too)."""
        return self.warped_init or self.temporal_loss


RECIPES = {
    "naive": Recipe(),
    "prev_style": Recipe(previous_as_style=True),
    "temporal_init": Recipe(warped_init=True),
    "temporal_loss": Recipe(temporal_loss=True),
    "temporal": Recipe(warped_init=True, temporal_loss=True),
    "consistent": Recipe(warped_init=True, temporal_loss=True, masked=True, full=True),
}


def recipe(method: str) -> Recipe:
    """The recipe of ``video.method``; an unknown name is a one-line error listing the methods."""
    try:
        return RECIPES[method]
    except KeyError:
        raise NSTError(f"video.method must be one of {', '.join(METHODS)}, got {method!r}") from None


def pass_directions(passes: int) -> list[int]:
    """+1 (forward) or -1 (backward) per pass, alternating as in Ruder et al. 2016's multi-pass algorithm.

    The last pass is always forward, so the final frames are finished in frame order (a frame folder's
    finished prefix is then the resume point): ``passes=2`` runs backward, then forward.
    """
    return [1 if (passes - 1 - k) % 2 == 0 else -1 for k in range(passes)]


def filled_init(warped: torch.Tensor, reliable: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The warped previous stylized frame where the flow is reliable, the content frame where it is not.

    Ruder et al. 2016 start from the warped frame; where the flow cannot be trusted (disoccluded, at a motion
    boundary, out of frame, or failing the photometric check) the warp holds the wrong picture: the seed paper's
    "dark areas", or on a moving subject the background dragged over the body and the limbs left behind. The
    temporal loss does not tie those pixels, so nothing would repair them; they start from the content frame
    instead, as ``naive`` starts every pixel. ``reliable`` is the method's mask, in [0, 1].
    """
    return reliable * warped + (1.0 - reliable) * content


def blended_init(
    warped_neighbour: torch.Tensor, mask: torch.Tensor, previous_pass: torch.Tensor, delta: float
) -> torch.Tensor:
    """Multi-pass start image (Ruder et al. 2016, eq. 9): ``d c w(x_n) + (1 - d c) x_t^(previous pass)``.

    ``warped_neighbour`` is the neighbour just finished in this pass, warped onto frame t; ``mask`` (c) its
    reliability; ``delta`` (d, 0.5 in the paper) how much of it enters where it is reliable.
    """
    weight = float(delta) * mask
    return weight * warped_neighbour + (1.0 - weight) * previous_pass


def combine_targets(
    warped: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``(target, mask)`` for the criterion's temporal input, standing for the sum of masked terms.

    ``sum_j c_j (x - w_j)^2`` and ``C (x - W)^2`` with ``C = sum_j c_j``, ``W = sum_j c_j w_j / C`` have the same
    gradient for any masks; for Ruder et al.'s closest-first masks (:func:`nst.flow.long_term_masks`), which
    are 0/1 and never overlap, they are equal. So long-term terms need no second temporal loss.
    """
    if not warped or len(warped) != len(masks):
        raise ValueError(f"need one mask per warped frame, got {len(warped)} frames and {len(masks)} masks")
    total = torch.stack([m.float() for m in masks]).sum(0)
    weighted = torch.stack([m.float() * w for w, m in zip(warped, masks, strict=True)]).sum(0)
    target = torch.where(total > 0, weighted / total.clamp_min(1e-8), warped[0])
    return target, total.clamp(0.0, 1.0)
