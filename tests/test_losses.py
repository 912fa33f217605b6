"""Loss terms against hand-computed values, and the criterion's named, weighted terms."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from nst.encoders.vgg import VGGFeatures
from nst.errors import NSTError
from nst.losses import (
    StyleTransferCriterion,
    content_loss,
    gram_matrix,
    noise_stability_loss,
    style_loss,
    temporal_loss,
    tv_loss,
)

CONTENT = ["relu2_1"]
STYLE = ["relu1_1", "relu2_1", "relu3_1"]


@pytest.fixture(scope="module")
def encoder() -> VGGFeatures:
    return VGGFeatures([*CONTENT, *STYLE], weights="random", seed=3)


def test_gram_matrix_by_hand() -> None:
    # one image, 2 channels, 1x2 pixels: F = [[1, 2], [3, 4]]
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / (2 * 1 * 2)
    torch.testing.assert_close(gram_matrix(features)[0], expected)


def test_style_loss_by_hand_and_broadcast_over_batch() -> None:
    g1 = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]).repeat(2, 1, 1)  # batch of 2
    t1 = torch.zeros(1, 2, 2)  # one target, broadcast
    g2 = torch.full((2, 1, 1), 3.0)
    t2 = torch.full((1, 1, 1), 1.0)
    # layer 1: mean of squares = 2/4 = 0.5; layer 2: (3-1)^2 = 4
    assert style_loss({"a": g1, "b": g2}, {"a": t1, "b": t2}).item() == pytest.approx((0.5 + 4) / 2)
    weighted = style_loss({"a": g1, "b": g2}, {"a": t1, "b": t2}, {"a": 3.0, "b": 1.0})
    assert weighted.item() == pytest.approx((3 * 0.5 + 4) / 4)


def test_content_tv_temporal_values_by_hand() -> None:
    a = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    b = torch.zeros_like(a)
    assert content_loss(a, b).item() == pytest.approx((0 + 1 + 4 + 9) / 4)
    # horizontal diffs: 1, 1 -> mean 1; vertical diffs: 2, 2 -> mean 4
    assert tv_loss(a).item() == pytest.approx(1 + 4)
    assert temporal_loss(a, b).item() == pytest.approx(14 / 4)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    assert temporal_loss(a, b, mask).item() == pytest.approx((0 + 9) / 4)  # Ruder et al.: over all W*H*C
    assert temporal_loss(a, b, mask, "valid").item() == pytest.approx((0 + 9) / 2)  # over valid pixels only
    for normalization in ("all", "valid"):
        assert temporal_loss(a, b, torch.zeros_like(mask), normalization).item() == 0.0
        assert temporal_loss(a, b, None, normalization).item() == pytest.approx(14 / 4)
    with pytest.raises(NSTError, match="loss.temporal_normalization must be one of all, valid, got 'pixels'"):
        temporal_loss(a, b, mask, "pixels")
    assert noise_stability_loss(a, b).item() == pytest.approx(14 / 4)


def test_temporal_mask_broadcasts_over_channels() -> None:
    image = torch.ones(1, 3, 2, 2)
    warped = torch.zeros(1, 3, 2, 2)
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    assert temporal_loss(image, warped, mask).item() == pytest.approx(6 / 12)
    assert temporal_loss(image, warped, mask, "valid").item() == pytest.approx(1.0)


def test_gradients_by_hand() -> None:
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]], requires_grad=True)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    temporal_loss(x, torch.zeros_like(x), mask).backward()
    # d/dx sum(m * x^2) / (W*H*C) = 2 m x / 4
    torch.testing.assert_close(x.grad, mask * x.detach() / 2)
    x.grad = None
    temporal_loss(x, torch.zeros_like(x), mask, "valid").backward()
    # d/dx sum(m * x^2) / sum(m) = 2 m x / 2
    torch.testing.assert_close(x.grad, mask * x.detach())
    x.grad = None
    content_loss(x, torch.zeros_like(x)).backward()
    torch.testing.assert_close(x.grad, 2 * x.detach() / 4)
    x.grad = None
    tv_loss(x).backward()
    # only horizontal (mean over 2 diffs) and vertical (mean over 2 diffs) terms
    dx = torch.tensor([[[[-1.0, 1.0], [-1.0, 1.0]]]])  # d/dx of mean((x1-x0)^2) with diff 1 -> +-1
    dy = torch.tensor([[[[-2.0, -2.0], [2.0, 2.0]]]])  # diff 2 -> +-2
    torch.testing.assert_close(x.grad, dx + dy)


def test_criterion_total_is_weighted_sum_of_enabled_terms(encoder) -> None:
    weights = dict(content_weight=2.0, style_weight=1e4, tv_weight=0.5, temporal_weight=3.0, noise_weight=7.0)
    criterion = StyleTransferCriterion(encoder, CONTENT, STYLE, **weights)
    style, content = torch.rand(1, 3, 48, 48), torch.rand(2, 3, 40, 32)
    criterion.set_style(style)
    image, warped, noisy = torch.rand(2, 3, 40, 32), torch.rand(2, 3, 40, 32), torch.rand(2, 3, 40, 32)
    mask = (torch.rand(2, 1, 40, 32) > 0.5).float()
    terms = criterion(image, criterion.content_targets(content), temporal_target=warped, temporal_mask=mask,
                      noisy_image=noisy)
    assert set(terms) == {"content", "style", "tv", "temporal", "noise", "total"}

    feats = encoder(image)
    style_feats = encoder(style)
    expected = {
        "content": 2.0 * content_loss(feats["relu2_1"], encoder(content)["relu2_1"]),
        "style": 1e4 * style_loss({n: gram_matrix(feats[n]) for n in STYLE},
                                  {n: gram_matrix(style_feats[n]) for n in STYLE}),
        "tv": 0.5 * tv_loss(image),
        "temporal": 3.0 * temporal_loss(image, warped, mask),
        "noise": 7.0 * noise_stability_loss(image, noisy),
    }
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value, msg=name)
        assert terms[name] > 0, name
    torch.testing.assert_close(terms["total"], sum(expected.values()))


def test_criterion_temporal_normalization_is_an_explicit_option(encoder) -> None:
    """Ruder et al. 2016 divide by all W*H*C pixels (the default); ``valid`` divides by the valid ones."""
    image, warped = torch.ones(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :8, :] = 1  # a quarter of the frame is valid: a large occlusion
    terms = {}
    for normalization in ("all", "valid"):
        criterion = StyleTransferCriterion(encoder, CONTENT, STYLE, content_weight=0, style_weight=0,
                                           temporal_weight=2.0, temporal_normalization=normalization)
        terms[normalization] = criterion(image, temporal_target=warped, temporal_mask=mask)["temporal"].item()
    assert terms == {"all": pytest.approx(2.0 / 4), "valid": pytest.approx(2.0)}
    assert StyleTransferCriterion(encoder, CONTENT, STYLE).temporal_normalization == "all"
    with pytest.raises(NSTError, match="temporal_normalization"):
        StyleTransferCriterion(encoder, CONTENT, STYLE, temporal_normalization="mean")


def test_disabled_terms_are_absent_and_not_in_total(encoder) -> None:
    criterion = StyleTransferCriterion(encoder, CONTENT, STYLE, content_weight=1.0, style_weight=0.0, tv_weight=0.0)
    image = torch.rand(1, 3, 32, 32)
    terms = criterion(image, criterion.content_targets(torch.rand(1, 3, 32, 32)), temporal_target=image)
    assert set(terms) == {"content", "total"}
    torch.testing.assert_close(terms["total"], terms["content"])


def test_blended_style_targets_mix_grams(encoder) -> None:
    criterion = StyleTransferCriterion(encoder, CONTENT, STYLE)
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 48, 40)
    criterion.set_style([a, b], blend=[3.0, 1.0])
    for name in STYLE:
        expected = 0.75 * gram_matrix(encoder(a)[name]) + 0.25 * gram_matrix(encoder(b)[name])
        torch.testing.assert_close(criterion.target_grams[name], expected)
    with pytest.raises(NSTError, match="blend"):
        criterion.set_style([a, b], blend=[1.0])


def test_gradient_flows_to_the_image_only(encoder) -> None:
    criterion = StyleTransferCriterion(encoder, CONTENT, STYLE, tv_weight=1.0)
    criterion.set_style(torch.rand(1, 3, 32, 32))
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    criterion(image, criterion.content_targets(torch.rand(1, 3, 32, 32)))["total"].backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None for p in criterion.parameters())


def test_criterion_builds_its_encoder_from_a_factory() -> None:
    factory = functools.partial(VGGFeatures, weights="random", pooling="avg")  # what vgg=default instantiates to
    criterion = StyleTransferCriterion(factory, ["relu3_3"], ["relu1_2", "relu2_2"])
    assert criterion.encoder.pooling == "avg"
    assert len(criterion.encoder.features) == 16  # stops at relu3_3
    with pytest.raises(NSTError, match="style_layer_weights"):
        StyleTransferCriterion(criterion.encoder, ["relu3_3"], ["relu1_2"], style_layer_weights=[1.0, 2.0])


class TinyEncoder(nn.Module):
    """Any module mapping (image, layers) to features, with a ``device``, serves the criterion."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleDict({"a": nn.Conv2d(3, 4, 1), "b": nn.Conv2d(3, 5, 1)})
        self.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return self.convs["a"].weight.device

    def forward(self, image: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        return {name: torch.relu(self.convs[name](image)) for name in layers}


def test_criterion_takes_any_encoder_with_a_device() -> None:
    criterion = StyleTransferCriterion(TinyEncoder(), ["a"], ["a", "b"], style_weight=10.0)
    assert criterion.device == torch.device("cpu")
    criterion.set_style(torch.rand(1, 3, 16, 16))
    assert criterion.target_grams["b"].shape == (1, 5, 5)
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    terms = criterion(image, criterion.content_targets(torch.rand(1, 3, 16, 16)))
    terms["total"].backward()
    assert set(terms) == {"content", "style", "total"} and image.grad.abs().sum() > 0


def test_target_normalised_style_loss_is_a_relative_error_per_layer() -> None:
    """``normalization="target"``: scaling one layer's features (and its target) by k leaves the loss as it is,
    where the plain Gram MSE grows as k^4 and drowns the other layers."""
    torch.manual_seed(0)
    feats = {"a": torch.rand(1, 4, 8, 8), "b": torch.rand(1, 4, 8, 8)}
    targets = {k: gram_matrix(torch.rand(1, 4, 8, 8)) for k in feats}
    grams = {k: gram_matrix(v) for k, v in feats.items()}
    scaled = dict(grams, a=grams["a"] * 100.0**2)
    scaled_targets = dict(targets, a=targets["a"] * 100.0**2)
    relative = style_loss(grams, targets, normalization="target")
    torch.testing.assert_close(style_loss(scaled, scaled_targets, normalization="target"), relative)
    assert style_loss(scaled, scaled_targets) > 1e6 * style_loss(grams, targets)
    expected = sum((grams[k] - targets[k]).pow(2).mean() / targets[k].pow(2).mean() for k in feats) / 2
    torch.testing.assert_close(relative, expected)
    with pytest.raises(NSTError, match="style_normalization"):
        style_loss(grams, targets, normalization="relative")
