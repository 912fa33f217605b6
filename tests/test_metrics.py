"""The video metrics: E_warp (Lai et al. 2018) on synthetic clips, style and content distances."""

from __future__ import annotations

import pytest
import torch

from nst.errors import NSTError
from nst.metrics import evaluate_video, frame_warping_error, metric_criterion, style_content_distance, warping_error
from tests.clips import flicker, moving_square_clip, textured

CLIP = moving_square_clip(5, 48, 64, step=2, seed=0)


@pytest.fixture(scope="module")
def criterion():
    criterion = metric_criterion("random")
    criterion.set_style(textured(64, 64, seed=7))
    return criterion


def test_e_warp_is_zero_for_a_static_clip() -> None:
    scores = warping_error([textured(48, 64, seed=2)] * 4)
    assert len(scores.per_frame) == 3 and scores.mean < 1e-10


def test_e_warp_of_an_output_equal_to_its_input_is_the_small_reference() -> None:
    reference = warping_error(CLIP)
    assert 0 < reference.mean < 1e-3
    assert warping_error(CLIP, [f.clone() for f in CLIP]).per_frame == reference.per_frame


def test_e_warp_is_higher_for_a_flickering_clip() -> None:
    assert warping_error(CLIP, flicker(CLIP, amount=0.05, seed=1)).mean > 5 * warping_error(CLIP).mean


def test_frame_warping_error_by_hand() -> None:
    previous, current = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, :, :2] = 1.0  # half the pixels of the first image; none of the second
    values = frame_warping_error(previous, current, torch.zeros(2, 2, 4, 4), mask)
    torch.testing.assert_close(values, torch.tensor([0.25, 0.0]))


def test_evaluate_video_reports_all_metrics_in_one_pass(criterion) -> None:
    clip = moving_square_clip(3, 32, 48, step=2, seed=0)
    same = evaluate_video(clip, clip, criterion)
    assert same.warp_error_output.per_frame == same.warp_error_input.per_frame and same.ratio == pytest.approx(1)
    assert max(same.content_distance.per_frame) == 0 and len(same.style_distance.per_frame) == 3
    noisy = evaluate_video(clip, flicker(clip, 0.1, seed=2), criterion)
    assert noisy.ratio > 2 and noisy.content_distance.mean > 0
    style = textured(64, 64, seed=7)
    assert style_content_distance(style, style, criterion) == (0.0, 0.0)
    assert style_content_distance(clip[0], clip[0], criterion)[0] > 0


def test_videos_of_different_lengths_or_one_frame_are_user_errors() -> None:
    with pytest.raises(NSTError, match="more frames"):
        warping_error(CLIP, CLIP[:3])
    with pytest.raises(NSTError, match="at least 2 frames"):
        warping_error(CLIP[:1])
