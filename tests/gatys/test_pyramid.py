"""Coarse to fine (nst.gatys.pyramid): the schedule, the sizes, one run seen by callbacks, per-level style targets."""

from __future__ import annotations

import pytest
import torch

from nst import color
from nst.errors import NSTError
from nst.gatys.loop import IterationInfo, LoopCallback, LoopSettings, StylizeResult
from nst.gatys.pyramid import Pyramid, resize, stylize_pyramid
from nst.io.image import load_input
from tests.gatys.conftest import ASSETS, NAMES, SpikeOnCalls, criterion, stylize


@pytest.fixture(scope="module")
def content96() -> torch.Tensor:
    return load_input(ASSETS / "content" / "chelsea.jpg", 96)  # 96x64: two levels, the coarse one 48x32


class Recorder(LoopCallback):
    def __init__(self, crit=None):
        self.infos: list[IterationInfo] = []
        self.sizes: list[tuple[int, int]] = []
        self.grams: dict[tuple[int, int], torch.Tensor] = {}
        self.ended: list[StylizeResult | None] = []
        self.crit = crit

    def on_iteration(self, info: IterationInfo) -> None:
        self.infos.append(info)
        size = tuple(info.image.shape[-2:])
        self.sizes.append(size)
        if self.crit is not None and size not in self.grams:  # the style targets in use at this level
            self.grams[size] = self.crit.target_grams["block1_conv1"].clone()

    def on_end(self, result: StylizeResult | None) -> None:
        self.ended.append(result)


def test_schedule_and_sizes() -> None:
    assert Pyramid().schedule(300) == [300]
    assert Pyramid(3).schedule(50) == [50, 50, 50]
    assert Pyramid(3, 20).schedule(50) == [20, 20, 20]
    assert Pyramid(2, [200, 100]).schedule(50) == [200, 100]
    assert Pyramid(3).sizes(300, 451) == [(75, 113), (150, 226), (300, 451)]
    assert Pyramid(2, factor=1.5).sizes(96, 144) == [(64, 96), (96, 144)]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"levels": 0}, "pyramid.levels must be at least 1"),
        ({"levels": 2, "iterations": [10, 20, 30]}, "3 values for 2 levels"),
        ({"levels": 2, "iterations": [10, 0]}, "at least 1 per level"),
        ({"levels": 2, "factor": 1.0}, "factor must be greater than 1"),
    ],
)
def test_bad_schedules_are_clear_errors(kwargs, message) -> None:
    with pytest.raises(NSTError, match=message):
        Pyramid(**kwargs)


def test_too_many_levels_for_the_image_is_refused_before_running(encoder, content96, style) -> None:
    with pytest.raises(NSTError, match=r"pyramid.levels=3 makes the coarsest level 24x16 for a 96x64 image"):
        stylize_pyramid(content96, criterion(encoder), pyramid=Pyramid(3), style_images=[style])
    assert Pyramid(2).check(content96, [style]) == [(32, 48), (64, 96)]
    with pytest.raises(NSTError, match=r"a style image is 32x20 at the coarsest pyramid level.*style\.size"):
        Pyramid(2).check(content96, [style, torch.rand(1, 3, 40, 64)])


def test_one_level_is_exactly_the_single_scale_loop(encoder, content, style) -> None:
    single = stylize(content, criterion(encoder), style_images=[style], iterations=4)
    one = stylize_pyramid(content, criterion(encoder), pyramid=Pyramid(1, 4), style_images=[style],
                          settings=LoopSettings(iterations=99, patience=None))
    assert one.history == single.history and torch.equal(one.image, single.image)


def test_two_levels_run_coarse_then_fine_as_one_run(encoder, content96, style) -> None:
    crit = criterion(encoder)
    recorder = Recorder(crit)
    result = stylize_pyramid(
        content96, crit, pyramid=Pyramid(2, [5, 3]), style_images=[style], callbacks=[recorder],
        settings=LoopSettings(patience=None),
    )
    assert result.image.shape == content96.shape and result.iterations == 8
    assert list(result.history) == NAMES and all(len(v) == 8 for v in result.history.values())
    assert [i.iteration for i in recorder.infos] == list(range(8)) and {i.iterations for i in recorder.infos} == {8}
    assert recorder.sizes == [(32, 48)] * 5 + [(64, 96)] * 3
    assert recorder.ended == [result]  # on_end once, with the full-size result
    # each level starts from the previous result upsampled, not from the content (content loss 0 there)
    assert result.history["loss/content"][0] == 0.0 and result.history["loss/content"][5] > 0
    # style targets recomputed per level from the style scaled like the content (64 px -> 32 px)
    coarse = criterion(encoder)
    coarse.set_style(resize(style, (32, 32)))
    torch.testing.assert_close(recorder.grams[32, 48], coarse.target_grams["block1_conv1"])
    fine = criterion(encoder)
    fine.set_style(style)
    torch.testing.assert_close(recorder.grams[64, 96], fine.target_grams["block1_conv1"])


def test_each_level_passes_on_its_lowest_loss_image(encoder, content96, style) -> None:
    crit = criterion(encoder)
    spy = SpikeOnCalls(crit, {4, 8})  # the last evaluation of each level
    result = stylize_pyramid(content96, crit, pyramid=Pyramid(2, 4), style_images=[style],
                             settings=LoopSettings(patience=None))
    coarse, fine = spy.best(0, 4), spy.best(4, 8)
    assert coarse < 3 and 4 <= fine < 7 and result.best == fine
    assert torch.equal(spy.images[4], resize(spy.images[coarse].clamp(0, 1), (64, 96)))  # the fine level's start
    assert torch.equal(result.image, spy.images[fine].clamp(0, 1))
    assert result.final_losses()["loss/total"] == pytest.approx(spy.totals[fine])


def test_failures_reach_callbacks_once_as_none(encoder, content96, style) -> None:
    recorder = Recorder()
    wild = lambda params: torch.optim.LBFGS(params, lr=1e6, tolerance_grad=0, tolerance_change=0)  # noqa: E731
    with pytest.raises(NSTError, match="NaN/inf"):
        stylize_pyramid(content96, criterion(encoder), pyramid=Pyramid(2, [20, 20]), style_images=[style],
                        settings=LoopSettings(optimizer=wild, patience=None), callbacks=[recorder])
    assert recorder.ended == [None]


def test_preserve_color_holds_across_levels(encoder, content96, style) -> None:
    result = stylize_pyramid(content96, criterion(encoder), pyramid=Pyramid(2, [4, 4]), style_images=[style],
                             preserve_color=True, settings=LoopSettings(patience=None))
    out, src = color.rgb_to_yiq(result.image), color.rgb_to_yiq(content96)
    assert (out[:, 1:] - src[:, 1:]).abs().mean() < 1e-3  # the content's I, Q (up to clamping)
    assert (out[:, :1] - src[:, :1]).abs().mean() > 0.01  # a stylized Y
