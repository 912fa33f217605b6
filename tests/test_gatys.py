"""The Gatys loop (nst.gatys), its callbacks (nst.gatys_callbacks) and luminance-only transfer (nst.color).

Random VGG (seeded), 64 px images, a few dozen iterations. The random VGG's activations are small, so the
style weight here is 1e9: that puts the style loss near 50 at the start, a real signal.
"""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from nst import color
from nst.errors import NSTError
from nst.gatys import (
    Callback,
    EarlyStopping,
    IterationInfo,
    StylizeResult,
    load_input,
    stylize_image,
)
from nst.gatys_callbacks import (
    LossCurves,
    ProgressBar,
    WandbLogger,
    build_callbacks,
    save_loss_plot,
    write_curves_csv,
)
from nst.losses import StyleTransferCriterion
from nst.vgg import VGGFeatures

ASSETS = Path(__file__).resolve().parents[1] / "assets"
CONTENT_LAYERS = ["block4_conv2"]
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
STYLE_WEIGHT = 1e9
NAMES = ["loss/content", "loss/style", "loss/tv", "loss/total"]
ADAM = functools.partial(torch.optim.Adam, lr=0.02, betas=(0.99, 0.999), eps=0.1)


@pytest.fixture(scope="module")
def encoder() -> VGGFeatures:
    return VGGFeatures([*CONTENT_LAYERS, *STYLE_LAYERS], weights="random", seed=0)


@pytest.fixture(scope="module")
def content() -> torch.Tensor:
    return load_input(ASSETS / "content" / "chelsea.jpg", 64)  # 64x43


@pytest.fixture(scope="module")
def style() -> torch.Tensor:
    return load_input(ASSETS / "styles" / "udnie.jpg", 64)


def criterion(encoder: VGGFeatures, **weights: float) -> StyleTransferCriterion:
    weights.setdefault("style_weight", STYLE_WEIGHT)
    return StyleTransferCriterion(encoder, CONTENT_LAYERS, STYLE_LAYERS, **weights)


@pytest.fixture(scope="module")
def lbfgs_run(encoder, content, style) -> StylizeResult:
    return stylize_image(content, criterion(encoder), style_images=[style], iterations=30)


def test_lbfgs_lowers_the_style_loss_several_fold_and_changes_the_image(lbfgs_run, content) -> None:
    style_curve = lbfgs_run.history["loss/style"]
    assert style_curve[-1] < style_curve[0] / 5
    assert lbfgs_run.image.shape == content.shape
    assert 0 <= lbfgs_run.image.min() and lbfgs_run.image.max() <= 1
    assert (lbfgs_run.image - content).abs().mean() > 0.03
    assert lbfgs_run.iterations == 30 and lbfgs_run.stop_reason == "iterations"
    assert list(lbfgs_run.history) == NAMES
    assert all(len(values) == 30 for values in lbfgs_run.history.values())


def test_logged_terms_add_up_to_the_total_and_summary_names_them(lbfgs_run) -> None:
    h = lbfgs_run.history
    for i in range(30):
        parts = h["loss/content"][i] + h["loss/style"][i] + h["loss/tv"][i]
        assert parts == pytest.approx(h["loss/total"][i], rel=1e-5)
    line = lbfgs_run.summary()
    assert "\n" not in line and "30 iterations" in line and "iteration budget" in line
    assert f"loss/total={h['loss/total'][-1]:.4g}" in line


def test_content_init_has_zero_content_loss_at_iteration_0(lbfgs_run) -> None:
    assert lbfgs_run.history["loss/content"][0] == 0.0
    assert lbfgs_run.history["loss/content"][-1] > 0


def test_noise_and_style_inits_start_elsewhere_and_keep_the_content_size(encoder, content, style) -> None:
    crit = criterion(encoder)
    first = {}
    for init, seed in (("noise", 0), ("noise", 1), ("style", 0)):
        result = stylize_image(content, crit, style_images=[style], init=init, iterations=1, seed=seed)
        assert result.image.shape == content.shape
        first[init, seed] = result.history["loss/content"][0]
    assert first["noise", 0] > 1e-3 and first["style", 0] > 1e-3  # content init gives exactly 0
    assert first["noise", 0] != first["noise", 1]  # the seed decides the noise
    again = stylize_image(content, crit, init="noise", iterations=1, seed=0)  # style targets kept from before
    assert again.history["loss/content"][0] == first["noise", 0]


def test_adam_runs_and_lowers_the_loss(encoder, content, style) -> None:
    result = stylize_image(content, criterion(encoder), style_images=[style], optimizer=ADAM, iterations=15)
    total = result.history["loss/total"]
    assert result.iterations == 15 and len(total) == 15
    assert total[-1] < total[0] / 2


def test_early_stopping_fires_on_a_plateau_not_on_a_steady_decline() -> None:
    stopper = EarlyStopping(patience=5, tolerance=1e-3)
    plateau = [10.0, 5.0, 3.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    fired = [stopper.update(v) for v in plateau]
    assert fired.index(True) == 8  # 2.0 since index 3: unchanged over 5 iterations first at index 8
    stopper = EarlyStopping(patience=5, tolerance=1e-3)
    assert not any(stopper.update(100.0 * 0.999**i) for i in range(500))  # -0.5 % per 5 iterations
    stopper.reset()
    assert not any(stopper.update(1.0) for _ in range(5))  # needs patience + 1 values
    assert stopper.update(1.0)
    for bad in ({"patience": 0}, {"tolerance": -1.0}, {"tolerance": math.nan}):
        with pytest.raises(NSTError):
            EarlyStopping(**bad)


@pytest.mark.parametrize("optimizer", [None, ADAM], ids=["lbfgs", "adam"])
def test_early_stop_ends_either_optimizer_at_the_first_plateau(encoder, content, style, optimizer) -> None:
    patience, tolerance = 3, 0.3
    result = stylize_image(
        content,
        criterion(encoder),
        style_images=[style],
        optimizer=optimizer,
        iterations=40,
        early_stop=EarlyStopping(patience, tolerance),
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
    result = stylize_image(content, crit, style_images=[style], optimizer=wolfe, iterations=9)
    assert len(calls) == 9 == result.iterations == len(result.history["loss/total"])


class Recorder(Callback):
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
    result = stylize_image(
        content, criterion(encoder), style_images=[style], optimizer=ADAM, iterations=10,
        callbacks=[recorder, lambda info: seen.append(info.iteration)], sync_every=sync_every,
    )
    assert [i.iteration for i in recorder.infos] == list(range(10)) == seen
    for info in recorder.infos:
        assert list(info.losses) == NAMES and all(type(v) is float for v in info.losses.values())
        assert info.losses["loss/total"] == result.history["loss/total"][info.iteration]
        assert info.image.shape == content.shape and info.iterations == 10
    assert recorder.ended == [result]


def test_divergence_raises_a_clear_error_and_reports_the_failure_to_callbacks(encoder, content, style) -> None:
    recorder = Recorder()
    wild = functools.partial(torch.optim.LBFGS, lr=1e6, tolerance_grad=0, tolerance_change=0)
    with pytest.raises(NSTError, match=r"NaN/inf.*no image was written.*style_weight.*optimizer=adam"):
        stylize_image(content, criterion(encoder), style_images=[style], optimizer=wild, iterations=20,
                      callbacks=[recorder])
    assert recorder.ended == [None]
    assert recorder.infos and all(math.isfinite(i.losses["loss/total"]) for i in recorder.infos)


def test_blend_weights_reach_the_style_targets(encoder, content, style) -> None:
    other = torch.rand_like(style)
    crit, single = criterion(encoder), criterion(encoder)
    stylize_image(content, crit, style_images=[style, other], style_blend=[1.0, 0.0], iterations=1)
    single.set_style([style])
    for name in STYLE_LAYERS:
        torch.testing.assert_close(crit.target_grams[name], single.target_grams[name])
    stylize_image(content, crit, style_images=[style, other], style_blend=[1.0, 1.0], iterations=1)
    assert not torch.allclose(crit.target_grams["block1_conv1"], single.target_grams["block1_conv1"])


def test_bf16_autocast_starts_from_the_same_losses(encoder, content, style) -> None:
    runs = {p: stylize_image(content, criterion(encoder), style_images=[style], iterations=1, precision=p)
            for p in ("fp32", "bf16")}
    assert runs["bf16"].history["loss/style"][0] == pytest.approx(runs["fp32"].history["loss/style"][0], rel=0.05)
    with pytest.raises(NSTError, match="precision"):
        stylize_image(content, criterion(encoder), style_images=[style], iterations=1, precision="fp8")


def test_bad_arguments_give_clear_errors(encoder, content, style) -> None:
    crit = StyleTransferCriterion(encoder, CONTENT_LAYERS, STYLE_LAYERS)
    with pytest.raises(NSTError, match="no style targets"):
        stylize_image(content, crit, iterations=1)
    with pytest.raises(NSTError, match="init must be"):
        stylize_image(content, crit, style_images=[style], init="zeros", iterations=1)
    with pytest.raises(NSTError, match="iterations"):
        stylize_image(content, crit, style_images=[style], iterations=0)
    with pytest.raises(NSTError, match="preserve_color"):
        stylize_image(content, crit, iterations=1, preserve_color=True)


# --- luminance-only transfer (Gatys et al. 2016b) ---
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


def test_preserve_color_keeps_the_content_chrominance(encoder, content, style) -> None:
    result = stylize_image(content, criterion(encoder), style_images=[style], iterations=12, preserve_color=True)
    out, src = color.rgb_to_yiq(result.image), color.rgb_to_yiq(content)
    assert (out[:, 1:] - src[:, 1:]).abs().mean() < 1e-3  # I, Q kept (up to clamping)
    assert (out[:, :1] - src[:, :1]).abs().mean() > 0.01  # Y stylized ...
    assert result.history["loss/style"][-1] < result.history["loss/style"][0] / 4  # ... towards the style's
    plain = stylize_image(content, criterion(encoder), style_images=[style], iterations=12)
    assert (color.rgb_to_yiq(plain.image)[:, 1:] - src[:, 1:]).abs().mean() > 0.02  # without it colours move


# --- inputs ---
def _save(path: Path, img: Image.Image) -> Path:
    img.save(path)
    return path


def test_load_input_names_the_input_in_errors(tmp_path: Path) -> None:
    with pytest.raises(NSTError, match=r"^style: image not found: .*nope\.png$"):
        load_input(tmp_path / "nope.png", 64, "style")
    with pytest.raises(NSTError, match=r"^content: image .*tiny\.png is 1x1.*32 px"):  # refused before upscaling
        load_input(_save(tmp_path / "tiny.png", Image.new("RGB", (1, 1))), 512, "content")


# --- callbacks ---
def test_curves_csv_and_plot_files(tmp_path: Path) -> None:
    history = {"loss/content": [0.0, 0.5, 0.25], "loss/style": [9.0, 3.0, 1.0], "loss/tv": [0.0] * 3,
               "loss/total": [9.0, 3.5, 1.25]}
    rows = list(csv.DictReader(open(write_curves_csv(history, tmp_path / "c.csv"))))
    assert list(rows[0]) == ["iteration", *NAMES]
    assert [float(r["loss/total"]) for r in rows] == history["loss/total"] and rows[-1]["iteration"] == "2"
    png = save_loss_plot(history, tmp_path / "c.png", "title")
    with Image.open(png) as img:
        assert img.format == "PNG" and img.width > 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "c.png"]  # no temp files left


def test_build_callbacks_reads_the_logger_config(tmp_path: Path) -> None:
    kinds = lambda cbs: [type(cb) for cb in cbs]  # noqa: E731
    assert kinds(build_callbacks({}, tmp_path, {}, 5)) == [ProgressBar]
    assert kinds(build_callbacks({"csv": {"name": "csv"}}, tmp_path, {}, 5, progress=False)) == [LossCurves]
    both = build_callbacks({"csv": {}, "wandb": {"project": "p"}}, tmp_path, {}, 5, progress=False)
    assert kinds(both) == [LossCurves, WandbLogger] and both[1].run is None  # W&B starts lazily
    with pytest.raises(NSTError, match="tensorboard"):
        build_callbacks({"tensorboard": {}}, tmp_path, {}, 5)
    LossCurves(tmp_path).on_end(None)  # a failed run writes no curves
    assert not list(tmp_path.iterdir())
