"""Reliability masks (Ruder et al. 2016): the disoccluded strip of a moving square, motion boundaries,
the combined mask and the long-term masks."""

from __future__ import annotations

import torch

from nst.flow import long_term_masks, motion_boundaries, occlusions, reliability_mask
from nst.flow.opencv import DISFlow
from tests.clips import moving_square_clip, square_box, square_flows

H, W, STEP = 64, 96, 6


def _strip(t: int) -> torch.Tensor:
    """The pixels of frame t that the square covered in t-1 and uncovered in t."""
    top, left, side = square_box(t, H, W, STEP)
    strip = torch.zeros(1, 1, H, W, dtype=torch.bool)
    strip[..., top : top + side, left - STEP : left] = True
    return strip


def test_forward_backward_check_marks_exactly_the_disoccluded_strip_with_true_flows() -> None:
    occluded = occlusions(square_flows(2, 1, H, W, STEP), square_flows(1, 2, H, W, STEP))
    assert torch.equal(occluded, _strip(2))


def test_forward_backward_check_marks_the_strip_with_dis_flows() -> None:
    frames = moving_square_clip(4, H, W, STEP, seed=0)
    dis = DISFlow()
    backward, forward = dis(frames[2], frames[1]), dis(frames[1], frames[2])
    occluded, strip = occlusions(backward, forward), _strip(2)
    assert occluded[strip].float().mean() > 0.7
    assert occluded[~strip].float().mean() < 0.05
    mask = reliability_mask(backward, forward)
    assert mask[strip].mean() < 0.3 and mask[~strip].mean() > 0.75


def test_motion_boundaries_at_a_flow_edge_only() -> None:
    flow = torch.zeros(1, 2, 16, 20)
    flow[:, 0, :, 10:] = 4.0
    edges = motion_boundaries(flow)
    assert edges[..., 9:11].all() and not edges[..., :8].any() and not edges[..., 12:].any()
    assert not motion_boundaries(torch.full((2, 2, 16, 20), 3.0)).any()


def test_reliability_mask_is_binary_weights_and_all_ones_for_a_static_pair() -> None:
    zero = torch.zeros(2, 2, 12, 14)
    mask = reliability_mask(zero, zero)
    assert mask.shape == (2, 1, 12, 14) and mask.dtype == torch.float32 and bool((mask == 1).all())
    flows = torch.randn(2, 2, 12, 14) * 3
    mask = reliability_mask(flows, torch.randn(2, 2, 12, 14))
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and mask.min() == 0


def test_long_term_masks_follow_ruder_and_never_sum_above_one() -> None:
    gen = torch.Generator().manual_seed(0)
    binary = [(torch.rand(1, 1, 8, 8, generator=gen) > 0.5).float() for _ in range(3)]
    reduced = long_term_masks(binary)
    torch.testing.assert_close(reduced[0], binary[0])
    for j in range(1, 3):  # Ruder et al. 2016, eq. 7: max(c_j - sum_{k<j} c_k, 0)
        torch.testing.assert_close(reduced[j], (binary[j] - sum(binary[:j])).clamp_min(0))
    soft = long_term_masks([torch.rand(1, 1, 8, 8, generator=gen) for _ in range(4)])
    assert sum(soft).max() <= 1 + 1e-6 and min(m.min() for m in soft) >= 0
