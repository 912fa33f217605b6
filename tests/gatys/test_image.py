"""Stills by optimisation (nst.gatys.image): what the loop does to one image, inits, blends, colour."""

from __future__ import annotations

import pytest
import torch

from nst import color
from nst.errors import NSTError
from nst.losses import StyleTransferCriterion
from tests.gatys.conftest import CONTENT_LAYERS, NAMES, STYLE_LAYERS, criterion, stylize


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
        result = stylize(content, crit, style_images=[style], init=init, iterations=1, seed=seed)
        assert result.image.shape == content.shape
        first[init, seed] = result.history["loss/content"][0]
    assert first["noise", 0] > 1e-3 and first["style", 0] > 1e-3  # content init gives exactly 0
    assert first["noise", 0] != first["noise", 1]  # the seed decides the noise
    again = stylize(content, crit, init="noise", iterations=1, seed=0)  # style targets kept from before
    assert again.history["loss/content"][0] == first["noise", 0]


def test_blend_weights_reach_the_style_targets(encoder, content, style) -> None:
    other = torch.rand_like(style)
    crit, single = criterion(encoder), criterion(encoder)
    stylize(content, crit, style_images=[style, other], style_blend=[1.0, 0.0], iterations=1)
    single.set_style([style])
    for name in STYLE_LAYERS:
        torch.testing.assert_close(crit.target_grams[name], single.target_grams[name])
    stylize(content, crit, style_images=[style, other], style_blend=[1.0, 1.0], iterations=1)
    assert not torch.allclose(crit.target_grams["block1_conv1"], single.target_grams["block1_conv1"])


def test_bf16_autocast_starts_from_the_same_losses(encoder, content, style) -> None:
    # 32 px, one iteration: CPUs without native bf16 (AVX2 only) emulate it ~100x slower than fp32
    content, style = content[..., :32, :32], style[..., :32, :32]
    runs = {p: stylize(content, criterion(encoder), style_images=[style], iterations=1, precision=p)
            for p in ("fp32", "bf16")}
    assert runs["bf16"].history["loss/style"][0] == pytest.approx(runs["fp32"].history["loss/style"][0], rel=0.05)
    with pytest.raises(NSTError, match="precision"):
        stylize(content, criterion(encoder), style_images=[style], iterations=1, precision="fp8")


def test_bad_arguments_give_clear_errors(encoder, content, style) -> None:
    crit = StyleTransferCriterion(encoder, CONTENT_LAYERS, STYLE_LAYERS)
    with pytest.raises(NSTError, match="no style targets"):
        stylize(content, crit, iterations=1)
    with pytest.raises(NSTError, match="init must be"):
        stylize(content, crit, style_images=[style], init="zeros", iterations=1)
    with pytest.raises(NSTError, match="iterations"):
        stylize(content, crit, style_images=[style], iterations=0)
    with pytest.raises(NSTError, match="preserve_color"):
        stylize(content, crit, iterations=1, preserve_color=True)


def test_preserve_color_keeps_the_content_chrominance(encoder, content, style) -> None:
    result = stylize(content, criterion(encoder), style_images=[style], iterations=12, preserve_color=True)
    out, src = color.rgb_to_yiq(result.image), color.rgb_to_yiq(content)
    assert (out[:, 1:] - src[:, 1:]).abs().mean() < 1e-3  # I, Q kept (up to clamping)
    assert (out[:, :1] - src[:, :1]).abs().mean() > 0.01  # Y stylized ...
    assert result.history["loss/style"][-1] < result.history["loss/style"][0] / 4  # ... towards the style's
    plain = stylize(content, criterion(encoder), style_images=[style], iterations=12)
    assert (color.rgb_to_yiq(plain.image)[:, 1:] - src[:, 1:]).abs().mean() > 0.02  # without it colours move


