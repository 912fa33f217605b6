"""Reliability masks (Ruder et al. 2016): the disoccluded strip of a moving square, motion boundaries,
the combined mask and the long-term masks."""

from __future__ import annotations

import torch

from nst.flow import long_term_masks, motion_boundaries, occlusions, reliability_mask
from nst.flow.masks import photometric_mismatch
from nst.flow.opencv import DISFlow
from tests.clips import moving_square_clip, runner_clip, square_box, square_flows, textured

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


def test_motion_boundary_constants_are_ruders() -> None:
    """|grad u|^2 + |grad v|^2 > 0.01 |w|^2 + 0.002 (Ruder et al. 2016) on flow ramps of known gradient."""
    x = torch.arange(32.0)
    ramp = torch.zeros(1, 2, 8, 32)
    ramp[:, 0] = 0.1 * x  # |grad|^2 = 0.01 everywhere; 0.01 |w|^2 + 0.002 passes 0.01 between x = 8 and 9
    assert motion_boundaries(ramp)[0, 0, 0].tolist() == (x <= 8).tolist()  # 0.2 or 0.02 |w|^2 would move it
    gentle = torch.zeros(1, 2, 8, 32)
    gentle[:, 1] = 0.04 * x  # the same along v: |grad|^2 = 0.0016 < 0.002, nowhere a boundary
    assert not motion_boundaries(gentle).any()
    steeper = torch.zeros(1, 2, 8, 32)
    steeper[:, 1] = 0.05 * x  # |grad|^2 = 0.0025: above 0.002 only where |w|^2 < 0.05, x <= 4
    assert motion_boundaries(steeper)[0, 0, 0].tolist() == (x <= 4).tolist()


def test_forward_backward_check_constants_are_ruders() -> None:
    """|w_f + w_b|^2 > 0.01 (|w_f|^2 + |w_b|^2) + 0.5 (Ruder et al. 2016) on uniform flows."""

    def occluded(backward: float, forward: float) -> bool:
        flow_ts, flow_st = torch.zeros(1, 2, 6, 8), torch.zeros(1, 2, 6, 8)
        flow_ts[:, 0], flow_st[:, 0] = backward, forward
        result = occlusions(flow_ts, flow_st)
        assert result.all() or not result.any()
        return bool(result.all())

    assert not occluded(0.0, 0.6)  # 0.36 < 0.5036
    assert occluded(0.0, 0.8)  # 0.64 > 0.5064: an additive term of 1 would miss it
    assert not occluded(10.0, -8.8)  # 1.44 < 0.01 * 177.44 + 0.5 = 2.27: a factor of 0.005 would mark it
    assert occluded(10.0, -8.4)  # 2.56 > 0.01 * 170.56 + 0.5 = 2.21: a factor of 0.02 would miss it


def test_reliability_mask_is_zero_at_disocclusions_boundaries_and_out_of_frame_only() -> None:
    zero = torch.zeros(2, 2, 12, 14)
    mask = reliability_mask(zero, zero)
    assert mask.shape == (2, 1, 12, 14) and mask.dtype == torch.float32 and bool((mask == 1).all())
    mask = reliability_mask(square_flows(2, 1, H, W, STEP), square_flows(1, 2, H, W, STEP))
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert not mask[_strip(2)].any()  # disoccluded
    top, left, side = square_box(2, H, W, STEP)
    assert mask[..., top + 2 : top + side - 2, left + 2 : left + side - 2].all()  # inside the moving square
    assert mask[..., : top - 2, :].all() and mask[..., top + side + 2 :, :].all()  # static background
    assert not mask[..., top + 2 : top + side - 2, left].any()  # the square's edge: a motion boundary
    shift = torch.zeros(1, 2, 12, 14)
    shift[:, 0] = 3.5  # pixels x > 9.5 land beyond the last column
    mask = reliability_mask(shift, -shift)
    assert mask[..., :9].all() and not mask[..., 11:].any()


def test_long_term_masks_follow_ruder_and_never_sum_above_one() -> None:
    gen = torch.Generator().manual_seed(0)
    binary = [(torch.rand(1, 1, 8, 8, generator=gen) > 0.5).float() for _ in range(3)]
    reduced = long_term_masks(binary)
    torch.testing.assert_close(reduced[0], binary[0])
    for j in range(1, 3):  # Ruder et al. 2016, eq. 7: max(c_j - sum_{k<j} c_k, 0)
        torch.testing.assert_close(reduced[j], (binary[j] - sum(binary[:j])).clamp_min(0))
    soft = long_term_masks([torch.rand(1, 1, 8, 8, generator=gen) for _ in range(4)])
    assert sum(soft).max() <= 1 + 1e-6 and min(m.min() for m in soft) >= 0


def test_photometric_check_catches_the_wrong_flow_that_passes_the_forward_backward_check() -> None:
    frames = moving_square_clip(3, H, W, STEP, seed=0)
    exact = square_flows(2, 1, H, W, STEP)
    near_strip = torch.nn.functional.max_pool2d(_strip(2).float(), 3, 1, 1) > 0  # the 3x3 average spreads it
    assert not photometric_mismatch(frames[2], frames[1], exact)[~near_strip].any()  # right flow: inputs match
    lazy = torch.zeros_like(exact)  # "nothing moved": consistent both ways, wrong on the square
    assert not occlusions(lazy, lazy).any()
    wrong = photometric_mismatch(frames[2], frames[1], lazy)
    top, left, side = square_box(2, H, W, STEP)
    assert wrong[..., top : top + side, left - STEP : left + side].float().mean() > 0.5
    assert not wrong[..., : top - 1, :].any()  # the static background is right and kept


def test_photometric_check_drops_dis_errors_on_a_running_figure_not_on_the_background() -> None:
    frames, alphas = runner_clip(4, 64, 96, step=4.0, pan=(-1.0, 0.0), background=textured(128, 192, seed=3),
                                 skin=textured(64, 96, seed=4).pow(2))
    dis = DISFlow()
    backward, forward = dis(frames[2], frames[1]), dis(frames[1], frames[2])
    truth = torch.full_like(backward[:, :1], -4.0).where(alphas[2] > 0.5, torch.full_like(backward[:, :1], 1.0))
    bad = (backward[:, :1] - truth).abs() > 1.0  # more than a pixel off along x
    near = torch.nn.functional.max_pool2d(alphas[2], 9, 1, 4) > 0
    ruder = reliability_mask(backward, forward) > 0
    checked = ruder & ~photometric_mismatch(frames[2], frames[1], backward)
    assert (ruder & bad & near).sum() > 50  # Ruder's masks keep many wrong pixels around the figure ...
    assert (checked & bad & near).sum() < 0.7 * (ruder & bad & near).sum()  # ... the check drops many of them
    assert checked[~near].float().mean() > 0.95 * ruder[~near].float().mean()  # and keeps the background
