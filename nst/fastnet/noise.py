"""The noise of the stability loss (Rainy & de Berker 2018), in one place: sampling, the on/off rule, the probe.

Training adds sparse pixel noise to the input and penalises the change of the output (the loss itself,
:func:`nst.losses.noise_stability_loss`, is a plain MSE in the shared criterion). Validation and sample grids
measure popping under a fixed *probe* noise, whatever the run trains with, so runs of a sweep compare.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from nst.errors import NSTError

#: The probe noise: the paper's defaults (1000 pixels, +-30 on a 0-255 scale), fixed for every run, so that
#: runs of a sweep over the noise settings (``noise.pixels=0`` included) are measured on the same footing.
PROBE_PIXELS = 1000
PROBE_RANGE = 30


def seeded_generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded from ``parts`` (e.g. seed, step): reproducible, and identical after a resume."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


def stability_noise(
    batch: int,
    height: int,
    width: int,
    pixels: int,
    value_range: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Sparse pixel noise (Rainy & de Berker 2018), shape (batch, 3, H, W), to add to images in [0, 1].

    In each image, ``pixels`` distinct positions (at most H*W) change in all three channels, each
    channel by an integer offset in [-value_range, value_range] on a 0-255 scale, returned divided by
    255. Zero offsets are excluded so every chosen position really changes.
    """
    noise = torch.zeros(batch, 3, height * width)
    pixels = min(int(pixels), height * width)
    if pixels > 0 and value_range > 0:
        for i in range(batch):
            positions = torch.randperm(height * width, generator=generator)[:pixels]
            magnitude = torch.randint(1, value_range + 1, (3, pixels), generator=generator)
            sign = torch.randint(0, 2, (3, pixels), generator=generator) * 2 - 1
            noise[i][:, positions] = (magnitude * sign).float() / 255.0
    return noise.view(batch, 3, height, width).to(device)


def probe_noise(shape: Sequence[int], seed: object = 0, device: torch.device | str | None = None) -> torch.Tensor:
    """The fixed noise (:data:`PROBE_PIXELS`, :data:`PROBE_RANGE`) used to measure popping."""
    b, _, h, w = shape
    return stability_noise(b, h, w, PROBE_PIXELS, PROBE_RANGE, seeded_generator("probe", seed), device)


class StabilityNoise:
    """The training noise of a run: how many pixels change (``pixels``), by how much (``range``, 0-255 scale),
    and how often it is drawn.

    Args:
        pixels: positions changed per image; 0 turns the term (and the noisy half of the forward) off.
        range: offsets are integers in [-range, range] on a 0-255 scale.
        per_epoch: ``False`` (default) draws fresh noise for every image of every batch, seeded by step, batch
            index and rank, so micro-batches of gradient accumulation and DDP ranks never repeat a draw.
            ``True`` keeps one noise image per epoch, broadcast over the batch and identical on every rank:
            the original code's behaviour, kept for reproducing it (a run shorter than one epoch, e.g. 40k
            steps on COCO, then sees a single noise image).
        seed: seeds every draw, together with the epoch, step, batch index and rank.
    """

    def __init__(self, pixels: int = 1000, range: int = 30, per_epoch: bool = False, seed: int = 0) -> None:  # noqa: A002
        if pixels < 0 or range < 0:
            raise NSTError(f"noise.pixels={pixels} and noise.range={range} must be >= 0")
        self.pixels = int(pixels)
        self.range = int(range)
        self.per_epoch = bool(per_epoch)
        self.seed = seed
        self._epoch_noise: tuple[tuple[int, int, int], torch.Tensor] | None = None

    @property
    def enabled(self) -> bool:
        """Whether there is any noise to add: pixels and range > 0 (the loss weight is the criterion's)."""
        return self.pixels > 0 and self.range > 0

    def sample(self, x: torch.Tensor, *, epoch: int, step: int, batch: int = 0, rank: int = 0) -> torch.Tensor:
        """Noise to add to the batch ``x``: the epoch's noise image (broadcast), or a fresh draw seeded by
        (epoch, step, batch index, rank); the same after a resume."""
        b, _, h, w = x.shape
        if self.per_epoch:
            key = (epoch, h, w)
            if self._epoch_noise is None or self._epoch_noise[0] != key:
                gen = seeded_generator(self.seed, "epoch", epoch)
                self._epoch_noise = key, stability_noise(1, h, w, self.pixels, self.range, gen, x.device)
            return self._epoch_noise[1].to(x.dtype)
        gen = seeded_generator(self.seed, "batch", epoch, step, batch, rank)
        return stability_noise(b, h, w, self.pixels, self.range, gen, x.device).to(x.dtype)
