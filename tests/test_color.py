"""Luminance-only transfer helpers (nst.color, Gatys et al. 2016b)."""

from __future__ import annotations

import pytest
import torch

from nst import color


def test_yiq_round_trip_and_luminance_matching() -> None:
    rgb = torch.rand(2, 3, 8, 9)
    torch.testing.assert_close(color.yiq_to_rgb(color.rgb_to_yiq(rgb)), rgb, atol=1e-5, rtol=0)
    gray = torch.full((1, 3, 4, 4), 0.5)
    torch.testing.assert_close(color.rgb_to_yiq(gray)[:, 1:], torch.zeros(1, 2, 4, 4), atol=1e-6, rtol=0)
    style, content_img = torch.rand(1, 3, 16, 16) * 0.3, torch.rand(1, 3, 20, 12) * 0.5 + 0.25
    matched = color.match_luminance(style, content_img)
    assert matched.shape == style.shape
    assert torch.equal(matched[:, 0], matched[:, 1]) and torch.equal(matched[:, 1], matched[:, 2])
    lum, target = color.luminance(matched), color.luminance(content_img)
    assert lum.mean().item() == pytest.approx(target.mean().item(), abs=1e-4)
    assert lum.std().item() == pytest.approx(target.std().item(), rel=1e-3)


