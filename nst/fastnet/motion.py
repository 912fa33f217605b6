"""Where the temporal term of the fast network gets its motion: none, synthetic, or real video pairs.

Ruder et al. 2018 (Sec. 5.2) train a feed-forward network to be consistent without optical flow at test time:
each training image x is paired with a second frame whose motion relative to x is known, both are stylized,
and the masked temporal loss of the shared criterion (:func:`nst.losses.temporal_loss`, weight
``loss.temporal_weight``) asks the two stylized frames to agree once one is warped onto the other. ReCoNet
(Gao et al. 2018) and Huang et al. 2017 train the same kind of term on video pairs.

Every source gives :class:`MotionPairs`: a ``partner`` frame to stylize beside x, a ``flow`` in
:mod:`nst.flow`'s convention and a ``mask`` (B, 1, H, W), 1 where the warp can be trusted. The term is
``|f(a) - warp(f(b), flow)|^2`` over the mask, where (a, b) is (x, partner) for real video (the partner is the
previous frame, the flow x's backward flow) and (partner, x) for synthetic motion, so that each side is
resampled at most once. Three sources, one interface (:class:`MotionSource`), selected by the ``temporal`` group:

* :class:`NoMotion` (``temporal=off``): no pairs, no second forward.
* :class:`SyntheticMotion` (``temporal=synthetic``): a random small shift, zoom and rotation T per image; the
  partner is T(x), made with :func:`~nst.flow.warp`, and the term compares f(T(x)) with T(f(x)), the network's
  output moved by the same exact flow: an equivariant network pays nothing, whatever its texture.
* :class:`VideoMotion` (``temporal=video``): consecutive frames of real videos with their estimated flow and
  reliability mask, as served by ``data=video`` (:mod:`nst.fastnet.video_data`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from nst.errors import NSTError
from nst.fastnet.noise import seeded_generator
from nst.flow import warp
from nst.flow.warp import sample_positions


@dataclass
class MotionPairs:
    """A partner frame for each frame x of a batch, and how their stylized versions must agree.

    ``partner`` (B, 3, H, W) in [0, 1]; ``flow`` (B, 2, H, W) in pixels; ``mask`` (B, 1, H, W) in [0, 1].
    With ``warp_partner`` (real video: the partner is the previous frame, ``flow`` x's backward flow) the term
    compares f(x) with ``warp(f(partner), flow)``; without it (synthetic motion: the partner is T(x) and
    ``flow`` the flow of T) it compares f(partner) with ``warp(f(x), flow)``. The mask lives on the grid of
    the side that is not warped.
    """

    partner: torch.Tensor
    flow: torch.Tensor
    mask: torch.Tensor
    warp_partner: bool = True

    def compared(self, output: torch.Tensor, partner_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(frame, warped frame) to compare, given f(x) and f(partner)."""
        if self.warp_partner:
            return output, warp(partner_output, self.flow)
        return partner_output, warp(output, self.flow)


class MotionSource:
    """The interface: ``enabled`` says whether the network sees a second (partner) batch at all."""

    enabled: bool = False

    def pairs(
        self, x: torch.Tensor, batch: Mapping[str, torch.Tensor] | None, *, step: int | str, rank: int = 0
    ) -> MotionPairs | None:
        """The partner frames of ``x``; ``batch`` is the data loader's dict when the data carries pairs."""
        raise NotImplementedError


class NoMotion(MotionSource):
    """``temporal=off``: no temporal term and no paired forward (Johnson et al. 2016 training)."""

    def pairs(self, x, batch, *, step, rank=0):  # noqa: ANN001 - the interface's signature
        return None


def affine_flow(matrix: torch.Tensor, offset: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The flow (B, 2, H, W) of the map q -> c + A (q - c) + t, minus q: ``A`` (B, 2, 2), ``t`` (B, 2) in pixels.

    ``c`` is the image centre ((W-1)/2, (H-1)/2) in :mod:`nst.flow`'s pixel coordinates (x right, y down), so
    ``warp(image, affine_flow(A, t, H, W))(q) = image(c + A (q - c) + t)``.
    """
    device = matrix.device
    ys = torch.arange(height, device=device, dtype=torch.float32) - (height - 1) / 2
    xs = torch.arange(width, device=device, dtype=torch.float32) - (width - 1) / 2
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    centred = torch.stack((gx, gy)).view(1, 2, -1)  # (1, 2, H*W)
    moved = torch.bmm(matrix.float(), centred.expand(len(matrix), -1, -1)) + offset.float().unsqueeze(-1)
    return (moved - centred).view(len(matrix), 2, height, width)


def similarity(zoom: torch.Tensor, angle_deg: torch.Tensor) -> torch.Tensor:
    """(B, 2, 2) matrices zoom * R(angle): a rotation by ``angle_deg`` (counter-clockwise on screen) scaled."""
    theta = torch.deg2rad(angle_deg.float())
    cos, sin = torch.cos(theta) * zoom, torch.sin(theta) * zoom
    return torch.stack((torch.stack((cos, sin), -1), torch.stack((-sin, cos), -1)), -2)


class SyntheticMotion(MotionSource):
    """Random small camera motion of still images (Ruder et al. 2018): shift, zoom and rotation per image.

    For each image a map M: q -> c + A (q - c) + t is drawn, with A = zoom * R(angle). The partner frame is
    T(x) = warp(x, flow of M), i.e. T(x)(q) = x(M q), and the temporal term compares f(T(x)) with T(f(x)):
    both sides are resampled exactly once, so a network that commutes with the motion (the identity, any 1x1
    convolution) scores 0 and texture is not penalised, unlike a comparison of f(x) with T^-1(f(T(x))), where
    one side is interpolated twice. Pixels of T(x) whose source M q falls outside the frame, or within
    ``margin`` pixels of its border (where the network's receptive field sees padding), are masked out.

    Args:
        max_shift: shifts are uniform in [-max_shift, max_shift] pixels, along x and y independently.
        max_zoom: zoom factors are log-uniform in [1 / (1 + max_zoom), 1 + max_zoom].
        max_rotation: angles are uniform in [-max_rotation, max_rotation] degrees.
        seed: seeds every draw, together with the step and rank (reproducible, identical after a resume).
        margin: pixels of T(x) whose source lies within this many pixels of x's border are masked out too.
    """

    enabled = True

    def __init__(
        self,
        max_shift: float = 4.0,
        max_zoom: float = 0.05,
        max_rotation: float = 2.0,
        seed: int = 0,
        margin: float = 4.0,
    ):
        if min(max_shift, max_zoom, max_rotation, margin) < 0 or max_zoom >= 1 or max_rotation > 45:
            raise NSTError(
                f"temporal: max_shift={max_shift}, max_zoom={max_zoom}, max_rotation={max_rotation} and "
                f"margin={margin} must be >= 0, with max_zoom < 1 and max_rotation <= 45 degrees; small motions "
                "are the point"
            )
        self.max_shift, self.max_zoom, self.max_rotation = float(max_shift), float(max_zoom), float(max_rotation)
        self.seed, self.margin = seed, float(margin)

    def transforms(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random maps as (A (n, 2, 2), t (n, 2)), drawn on the CPU."""

        def uniform(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=generator) * 2 - 1

        log_zoom = math.log1p(self.max_zoom)
        zoom = torch.exp(uniform(n) * log_zoom)
        angle = uniform(n) * self.max_rotation
        return similarity(zoom, angle), uniform(n, 2) * self.max_shift

    def apply(self, x: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor) -> MotionPairs:
        """Pairs for given maps: partner = T(x) = warp(x, flow of M); the mask keeps the pixels of T(x) whose
        source lies at least ``margin`` pixels inside x."""
        h, w = x.shape[-2:]
        matrix, offset = matrix.to(x.device), offset.to(x.device)
        flow = affine_flow(matrix, offset, h, w)
        partner = warp(x, flow)
        pos = sample_positions(flow)
        m = self.margin
        inside = (pos[:, 0:1] >= m) & (pos[:, 0:1] <= w - 1 - m) & (pos[:, 1:2] >= m) & (pos[:, 1:2] <= h - 1 - m)
        return MotionPairs(partner.to(x.dtype), flow, inside.to(x.dtype), warp_partner=False)

    def pairs(self, x, batch, *, step, rank=0):  # noqa: ANN001 - the interface's signature
        matrix, offset = self.transforms(len(x), seeded_generator(self.seed, "motion", step, rank))
        return self.apply(x, matrix, offset)


#: The keys of a data loader batch that carries real pairs (``data=video``).
PAIR_KEYS = ("image", "previous", "flow", "mask")


def carries_pairs(batch: Mapping | None) -> bool:
    """Whether a data loader batch carries real pairs (``data=video``)."""
    return batch is not None and all(k in batch for k in PAIR_KEYS)


class VideoMotion(MotionSource):
    """``temporal=video``: the previous frames, backward flows and reliability masks that ``data=video`` loads.

    Still images mixed into the batch (``data.mix``) carry a zero mask, so they add style but no temporal signal.
    """

    enabled = True

    def pairs(self, x, batch, *, step, rank=0):  # noqa: ANN001 - the interface's signature
        if not carries_pairs(batch):
            raise NSTError("temporal=video needs frame pairs from the data: use data=video (or temporal=synthetic)")
        return MotionPairs(batch["previous"].to(x), batch["flow"].to(x.device).float(), batch["mask"].to(x))


def split_batch(batch: torch.Tensor | Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, Mapping | None]:
    """(current images, the batch dict or None): data loaders yield image tensors or dicts with ``image``."""
    if isinstance(batch, Mapping):
        return batch["image"], batch
    return batch, None
