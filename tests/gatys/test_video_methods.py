"""What each video method does to a frame, checked exactly: the start image, the style image and the temporal
target and mask the loop hands to the optimiser (nst.gatys.temporal's recipes through nst.gatys.video).

The optimiser is replaced by a recorder that returns a fixed "stylization" of its start image, and flows are the
exact flows of the moving-square clip, so every expected tensor is computed by hand from the stored frames.
No VGG: these tests take well under a second each.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nst.gatys.video as video_module
from nst.flow import reliability_mask, warp
from nst.flow.masks import photometric_mismatch
from nst.gatys.loop import LoopSettings
from nst.gatys.temporal import blended_init, filled_init
from nst.gatys.video import VideoSettings, stylize_video
from nst.gatys.video_store import InputFrames, PassFolders
from nst.io.frames import FrameFolderWriter
from nst.io.video import open_video
from tests.clips import moving_square_clip, square_box, square_flows

FRAMES, H, W, STEP = 4, 36, 48, 3


class ExactFlows:
    """Stands in for :class:`nst.flow.cache.VideoFlows` with the clip's exact flows and Ruder's masks of them."""

    def flow(self, t: int, s: int) -> torch.Tensor:
        return square_flows(t, s, H, W, STEP)

    def mask(self, t: int, s: int) -> torch.Tensor:
        return reliability_mask(self.flow(t, s), self.flow(s, t))

    def prefetch(self, pairs, masks: bool = True) -> None:
        pass


class Recorder:
    """Stands in for the criterion and for :class:`~nst.gatys.loop.PixelOptimizer`: records, per optimised frame,
    the start image, the temporal target and mask, and the style images set before it."""

    device = torch.device("cpu")
    best = 0  # the loop's index of the returned image in its history

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.style: list[torch.Tensor] = []

    # the criterion's side
    def to(self, *args, **kwargs) -> Recorder:
        return self

    def set_style(self, images, blend=None) -> None:
        self.style = [image.clone() for image in images]

    def enabled(self, term: str) -> bool:
        return True

    def content_targets(self, content: torch.Tensor) -> dict:
        return {}

    def __call__(self, x, targets, temporal_target=None, temporal_mask=None) -> dict:
        self.calls[-1].update(target=temporal_target, mask=temporal_mask)
        return {"total": x.sum()}

    # the optimiser's side
    def optimizer(self, settings: LoopSettings) -> Recorder:
        return self

    def run(self, init: torch.Tensor, loss_fn):
        self.calls.append({"init": init.clone(), "style": self.style})
        loss_fn(init)
        stylized = (1.0 - init).clamp(0, 1) * 0.8 + 0.1  # any fixed map that changes the image
        return stylized, {"loss/total": [0.0]}, 1, "iterations"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clip") / "square"
    with FrameFolderWriter(folder) as writer:
        for frame in moving_square_clip(FRAMES, H, W, step=STEP):
            writer.write(frame)
    return folder


def run(method: str, clip: Path, out: Path, monkeypatch, passes: int = 1) -> tuple[Recorder, PassFolders, list]:
    recorder = Recorder()
    monkeypatch.setattr(video_module, "PixelOptimizer", recorder.optimizer)
    inputs = InputFrames(open_video(clip), out / "input", (H, W))
    store = PassFolders(out, inputs.count, passes)
    settings = VideoSettings(method, None, (1,), passes)
    stylize_video(inputs, recorder, ExactFlows(), store, settings=LoopSettings(1, patience=None), video=settings,
                  style_images=[torch.full((1, 3, H, W), 0.5)])
    return recorder, store, [inputs.frame(t) for t in range(FRAMES)]


def warped_previous(store: PassFolders, t: int, k: int = 0) -> torch.Tensor:
    return warp(store.load(k, t - 1), square_flows(t, t - 1, H, W, STEP))


def test_naive_starts_every_frame_from_its_content_without_temporal_terms(clip, tmp_path, monkeypatch) -> None:
    recorder, _, content = run("naive", clip, tmp_path, monkeypatch)
    assert len(recorder.calls) == FRAMES
    for t, call in enumerate(recorder.calls):
        assert torch.equal(call["init"], content[t]) and call["target"] is None


def test_prev_style_uses_the_previous_stylized_frame_as_the_style(clip, tmp_path, monkeypatch) -> None:
    recorder, store, content = run("prev_style", clip, tmp_path, monkeypatch)
    assert torch.equal(recorder.calls[0]["style"][0], torch.full((1, 3, H, W), 0.5))  # the real style first
    for t in range(1, FRAMES):
        call = recorder.calls[t]
        assert torch.equal(call["style"][0], store.load(0, t - 1))
        assert torch.equal(call["init"], content[t]) and call["target"] is None


def test_temporal_init_starts_from_the_warped_previous_frame_without_a_loss(clip, tmp_path, monkeypatch) -> None:
    recorder, store, content = run("temporal_init", clip, tmp_path, monkeypatch)
    for t in range(1, FRAMES):
        call = recorder.calls[t]
        torch.testing.assert_close(call["init"], warped_previous(store, t))
        assert not torch.allclose(call["init"], content[t], atol=0.05) and call["target"] is None


def test_temporal_loss_starts_from_content_and_targets_the_warped_previous_frame(clip, tmp_path, monkeypatch) -> None:
    recorder, store, content = run("temporal_loss", clip, tmp_path, monkeypatch)
    assert recorder.calls[0]["target"] is None
    for t in range(1, FRAMES):
        call = recorder.calls[t]
        assert torch.equal(call["init"], content[t])
        torch.testing.assert_close(call["target"], warped_previous(store, t))
        assert call["mask"] is None  # unmasked: the disoccluded strip is tied too


def test_consistent_fills_disocclusions_from_content_and_masks_them_out_of_the_loss(
    clip, tmp_path, monkeypatch
) -> None:
    recorder, store, content = run("consistent", clip, tmp_path, monkeypatch)
    for t in range(1, FRAMES):
        call = recorder.calls[t]
        top, left, side = square_box(t, H, W, STEP)
        strip = (slice(None), slice(None), slice(top, top + side), slice(left - STEP, left))  # uncovered in t
        inside = (slice(None), slice(None), slice(top + 2, top + side - 2), slice(left + 2, left + side - 2))
        torch.testing.assert_close(call["init"][strip], content[t][strip])
        torch.testing.assert_close(call["init"][inside], warped_previous(store, t)[inside])
        assert bool((call["mask"][strip] == 0).all()) and bool((call["mask"][inside] == 1).all())
        torch.testing.assert_close(call["target"][inside], warped_previous(store, t)[inside])


def test_filled_init_and_blended_init_follow_their_formulas() -> None:
    gen = torch.Generator().manual_seed(0)
    warped, content, previous = (torch.rand(1, 3, 4, 5, generator=gen) for _ in range(3))
    visible = (torch.rand(1, 1, 4, 5, generator=gen) > 0.5).float()
    filled = filled_init(warped, visible, content)
    assert torch.equal(filled, torch.where(visible.bool(), warped, content))
    blended = blended_init(warped, visible, previous, 0.5)
    torch.testing.assert_close(blended, torch.where(visible.bool(), 0.5 * warped + 0.5 * previous, previous))


def test_second_pass_blends_the_warped_neighbour_into_the_first_pass(clip, tmp_path, monkeypatch) -> None:
    recorder, store, content = run("consistent", clip, tmp_path, monkeypatch, passes=2)
    assert len(recorder.calls) == 2 * FRAMES
    flows = ExactFlows()
    for s in range(1, FRAMES):  # pass 1 runs forward: frame s after frame s-1
        call, t = recorder.calls[FRAMES + s], s
        neighbour = warp(store.load(1, t - 1), flows.flow(t, t - 1))
        wrong = photometric_mismatch(content[t], content[t - 1], flows.flow(t, t - 1), 0.05)
        mask = flows.mask(t, t - 1) * (~wrong).float()  # consistent's mask: Ruder's and the photometric check
        expected = blended_init(neighbour, mask, store.load(0, t), 0.5)
        torch.testing.assert_close(call["init"], expected)
        assert not torch.allclose(call["init"], store.load(0, t))  # the neighbour did enter
    assert torch.equal(recorder.calls[FRAMES]["init"], store.load(0, 0))  # a pass's first frame: its last result
