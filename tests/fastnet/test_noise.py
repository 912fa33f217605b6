"""The stability noise (nst.fastnet.noise): exactly `pixels` positions, integer offsets, seeded draws."""

from __future__ import annotations

import pytest
import torch

from nst.errors import NSTError
from nst.fastnet.noise import PROBE_PIXELS, StabilityNoise, probe_noise, stability_noise


def test_stability_noise_changes_exactly_pixels_positions_within_range() -> None:
    generator = torch.Generator().manual_seed(0)
    noise = stability_noise(3, 20, 30, pixels=50, value_range=30, generator=generator)
    assert noise.shape == (3, 3, 20, 30)
    changed = (noise != 0).any(dim=1)  # positions, all channels
    assert changed.sum(dim=(1, 2)).tolist() == [50, 50, 50]
    assert ((noise != 0).all(dim=1) == changed).all(), "every chosen position changes in all 3 channels"
    steps = noise * 255
    assert torch.allclose(steps, steps.round(), atol=1e-4), "integer offsets on the 0-255 scale"
    assert steps.abs().max() <= 30 + 1e-4
    assert steps.abs().max() > 20, "offsets use the whole range"
    assert not torch.equal(changed[0], changed[1]), "each image gets its own positions"


def test_stability_noise_is_seeded_and_can_be_off() -> None:
    a = stability_noise(1, 8, 8, 10, 5, generator=torch.Generator().manual_seed(1))
    b = stability_noise(1, 8, 8, 10, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert stability_noise(1, 8, 8, 0, 30).abs().sum() == 0
    assert (stability_noise(1, 4, 4, 1000, 30) != 0).any(dim=1).sum() == 16, "capped at H*W positions"


def test_on_off_rule_and_bad_values() -> None:
    assert StabilityNoise(pixels=10, range=5).enabled
    assert not StabilityNoise(pixels=0).enabled and not StabilityNoise(pixels=10, range=0).enabled
    with pytest.raises(NSTError, match="noise.pixels"):
        StabilityNoise(pixels=-1)


def test_per_epoch_noise_is_one_image_per_epoch() -> None:
    x = torch.zeros(2, 3, 16, 16)
    epoch = StabilityNoise(pixels=20, per_epoch=True)
    a = epoch.sample(x, epoch=0, step=0)
    assert a.shape == (1, 3, 16, 16) and torch.equal(a, epoch.sample(x, epoch=0, step=5, batch=5, rank=1))
    assert not torch.equal(a, epoch.sample(x, epoch=1, step=6))


def test_per_batch_noise_is_the_default_and_differs_by_step_batch_index_and_rank() -> None:
    x = torch.zeros(2, 3, 16, 16)
    noise = StabilityNoise(pixels=20)
    assert not noise.per_epoch
    b = noise.sample(x, epoch=0, step=3, batch=6)
    assert b.shape == (2, 3, 16, 16) and not torch.equal(b[0], b[1])
    assert torch.equal(b, StabilityNoise(pixels=20).sample(x, epoch=0, step=3, batch=6))  # seeded
    others = [
        noise.sample(x, epoch=0, step=4, batch=6),
        noise.sample(x, epoch=0, step=3, batch=7),  # the next micro-batch of gradient accumulation
        noise.sample(x, epoch=0, step=3, batch=6, rank=1),
        StabilityNoise(pixels=20, seed=1).sample(x, epoch=0, step=3, batch=6),
    ]
    assert not any(torch.equal(b, other) for other in others)


def test_probe_noise_is_fixed() -> None:
    a, b = probe_noise((1, 3, 40, 40), seed="x"), probe_noise((1, 3, 40, 40), seed="x")
    assert torch.equal(a, b) and int((a != 0).any(1).sum()) == PROBE_PIXELS
