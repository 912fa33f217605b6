"""The pixel optimiser (nst.gatys.loop): iterations counted as loss evaluations, early stop, callbacks, divergence."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from nst.errors import NSTError
from nst.gatys.loop import EarlyStopping, IterationInfo, LoopCallback, LoopSettings, StylizeResult
from tests.gatys.conftest import ADAM, NAMES, SpikeOnCalls, criterion, stylize


def test_early_stopping_fires_on_a_plateau_not_on_a_steady_decline() -> None:
    stopper = EarlyStopping(patience=5, tolerance=1e-3)
    plateau = [10.0, 5.0, 3.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    fired = [stopper.update(v) for v in plateau]
    assert fired.index(True) == 8  # 2.0 since index 3: unchanged over 5 iterations first at index 8
    stopper = EarlyStopping(patience=5, tolerance=1e-3)
    assert not any(stopper.update(100.0 * 0.999**i) for i in range(500))  # -0.5 % per 5 iterations
    stopper = EarlyStopping(patience=5, tolerance=1e-3)
    assert not any(stopper.update(1.0) for _ in range(5))  # needs patience + 1 values
    assert stopper.update(1.0)
    for bad in ({"patience": 0}, {"tolerance": -1.0}, {"tolerance": math.nan}):
        with pytest.raises(NSTError):
            EarlyStopping(**bad)


def test_adam_runs_and_lowers_the_loss(encoder, content, style) -> None:
    result = stylize(content, criterion(encoder), style_images=[style], optimizer=ADAM, iterations=15)
    total = result.history["loss/total"]
    assert result.iterations == 15 and len(total) == 15
    assert total[-1] < total[0] / 2


@pytest.mark.parametrize("optimizer", [None, ADAM], ids=["lbfgs", "adam"])
def test_early_stop_ends_either_optimizer_at_the_first_plateau(encoder, content, style, optimizer) -> None:
    patience, tolerance = 3, 0.3
    result = stylize(
        content,
        criterion(encoder),
        style_images=[style],
        optimizer=optimizer,
        iterations=40,
        patience=patience,
        tolerance=tolerance,
    )
    total = result.history["loss/total"]
    assert result.stop_reason == "early_stop" and result.iterations < 40
    assert len(total) == result.iterations
    plateau = [abs(total[i - patience] - total[i]) < tolerance * abs(total[i - patience])
               for i in range(patience, len(total))]
    assert plateau[-1] and not any(plateau[:-1])  # stopped right at the first plateau


def test_lbfgs_counts_every_evaluation_including_its_line_search(encoder, content, style) -> None:
    crit = criterion(encoder)
    calls = []
    original = crit.forward
    crit.forward = lambda *a, **k: (calls.append(1), original(*a, **k))[1]
    wolfe = functools.partial(torch.optim.LBFGS, line_search_fn="strong_wolfe", tolerance_grad=0, tolerance_change=0)
    result = stylize(content, crit, style_images=[style], optimizer=wolfe, iterations=9)
    assert len(calls) == 9 == result.iterations == len(result.history["loss/total"])


class Recorder(LoopCallback):
    def __init__(self) -> None:
        self.infos: list[IterationInfo] = []
        self.ended: list[StylizeResult | None] = []

    def on_iteration(self, info: IterationInfo) -> None:
        self.infos.append(info)

    def on_end(self, result: StylizeResult | None) -> None:
        self.ended.append(result)


@pytest.mark.parametrize("sync_every", [1, 4])
def test_callbacks_see_every_iteration_in_order_with_the_logged_floats(encoder, content, style, sync_every) -> None:
    recorder, seen = Recorder(), []
    result = stylize(
        content, criterion(encoder), style_images=[style], optimizer=ADAM, iterations=10,
        callbacks=[recorder, lambda info: seen.append(info.iteration)], sync_every=sync_every,
    )
    assert [i.iteration for i in recorder.infos] == list(range(10)) == seen
    for info in recorder.infos:
        assert list(info.losses) == NAMES and all(type(v) is float for v in info.losses.values())
        assert info.losses["loss/total"] == result.history["loss/total"][info.iteration]
        assert info.image.shape == content.shape and info.iterations == 10
    assert recorder.ended == [result]


WOLFE = functools.partial(torch.optim.LBFGS, line_search_fn="strong_wolfe", tolerance_grad=0, tolerance_change=0)


@pytest.mark.parametrize("optimizer", [None, WOLFE, ADAM], ids=["lbfgs", "strong_wolfe", "adam"])
def test_the_image_of_the_lowest_loss_is_returned_not_the_last_evaluated(encoder, content, style, optimizer) -> None:
    crit = criterion(encoder)
    spy = SpikeOnCalls(crit, {6})  # the last evaluation's loss jumps
    result = stylize(content, crit, style_images=[style], optimizer=optimizer, iterations=6, sync_every=4)
    total, best = result.history["loss/total"], spy.best()
    assert total == pytest.approx(spy.totals) and best < 5 and result.best == best
    assert torch.equal(result.image, spy.images[best].clamp(0, 1))
    assert not torch.equal(result.image, spy.images[-1].clamp(0, 1))
    assert result.final_losses()["loss/total"] == total[best] == min(total)  # what the logs and W&B summary get
    assert f"best: iteration {best})" in result.summary()


def test_divergence_raises_a_clear_error_and_reports_the_failure_to_callbacks(encoder, content, style) -> None:
    recorder = Recorder()
    wild = functools.partial(torch.optim.LBFGS, lr=1e6, tolerance_grad=0, tolerance_change=0)
    with pytest.raises(NSTError, match=r"NaN/inf.*no image was written.*style_weight.*optimizer=adam"):
        stylize(content, criterion(encoder), style_images=[style], optimizer=wild, iterations=20,
                      callbacks=[recorder])
    assert recorder.ended == [None]
    assert recorder.infos and all(math.isfinite(i.losses["loss/total"]) for i in recorder.infos)


def test_settings_refuse_bad_values() -> None:
    for bad in ({"iterations": 0}, {"precision": "fp8"}, {"patience": 0}):
        with pytest.raises(NSTError):
            LoopSettings(**bad)
