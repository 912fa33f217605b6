"""Synthetic motion (nst.fastnet.motion) and the temporal term in training: exact flows, gradients, paired forwards."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from nst.app.builders import build_module
from nst.app.config import build
from nst.errors import NSTError
from nst.fastnet.motion import NoMotion, SyntheticMotion, VideoMotion, affine_flow, similarity
from nst.flow import warp
from nst.losses import temporal_loss
from tests.clips import textured
from tests.conftest import TEST_OVERRIDES
from tests.fastnet.training import fit  # one thread for tiny tensors: tests/fastnet/conftest.py
from tests.helpers import compose_config, copy_config

pytestmark = pytest.mark.filterwarnings(
    r"ignore:.*(does not have many workers|module\(s\) in eval mode|random weights|LeafSpec|is not empty).*"
)


@pytest.fixture(scope="module")
def synthetic_root(train_images: Path) -> DictConfig:
    """The tiny train config of the test suite with ``temporal=synthetic``, composed once."""
    return compose_config("train", [*TEST_OVERRIDES["train"], f"data.root={train_images}", "temporal=synthetic"])


def test_integer_shift_is_exact() -> None:
    x = textured(40, 48)
    motion = SyntheticMotion(margin=0)
    pairs = motion.apply(x, torch.eye(2)[None], torch.tensor([[3.0, -2.0]]))
    # partner(q) = x(q + t): rows move down by 2, columns left by 3
    torch.testing.assert_close(pairs.partner[..., 2:, : 48 - 3], x[..., : 40 - 2, 3:])
    assert torch.allclose(pairs.flow[:, 0], torch.tensor(3.0)) and torch.allclose(pairs.flow[:, 1], torch.tensor(-2.0))
    assert not pairs.warp_partner  # the term compares f(partner) with warp(f(x), flow)
    valid = pairs.mask[0, 0].bool()
    assert valid[2:, : 48 - 3].all() and not valid[:2].any() and not valid[:, 48 - 3 :].any()


def test_margin_masks_sources_near_the_border() -> None:
    x = textured(40, 48)
    pairs = SyntheticMotion(margin=4).apply(x, torch.eye(2)[None], torch.tensor([[3.0, -2.0]]))
    valid = pairs.mask[0, 0].bool()
    # sources x + 3 in [4, 43] and y - 2 in [4, 35]: columns 1..40, rows 6..37
    assert valid[6:38, 1:41].all() and valid.sum() == 32 * 40


def _temporal_term(net, motion: SyntheticMotion, x: torch.Tensor) -> float:
    """The masked temporal MSE of ``net`` on the pairs of a fixed zoom, rotation and sub-pixel shift."""
    matrix = similarity(torch.tensor([1.04, 0.97]), torch.tensor([2.0, -1.5]))
    pairs = motion.apply(x, matrix, torch.tensor([[2.5, -3.25], [-1.0, 3.5]]))
    compared, warped = pairs.compared(net(x), net(pairs.partner))
    return float(temporal_loss(compared, warped, pairs.mask, "valid"))


def test_an_equivariant_network_pays_no_temporal_loss_whatever_its_texture() -> None:
    """f(T(x)) against T(f(x)): each side resampled once, so the identity and any 1x1 convolution score 0 on a
    textured image, while a network whose output does not move with its input scores clearly more."""
    x = textured(64, 64, seed=3).expand(2, -1, -1, -1).contiguous()
    motion = SyntheticMotion(margin=0)
    conv = torch.nn.Conv2d(3, 3, 1)
    torch.manual_seed(0)
    pattern = torch.rand(1, 3, 64, 64)  # fixed to the frame, like texture that does not follow the content
    with torch.no_grad():
        identity = _temporal_term(lambda image: image, motion, x)
        one_by_one = _temporal_term(conv, motion, x)
        noisy = _temporal_term(lambda image: (image + 0.2 * pattern).clamp(0, 1), motion, x)
    assert identity < 1e-6 and one_by_one < 1e-6, (identity, one_by_one)
    assert noisy > 1e-3, noisy
    # the old comparison, f(x) against T^-1(f(T(x))), charged the identity for resampling twice
    matrix = similarity(torch.tensor([1.04, 0.97]), torch.tensor([2.0, -1.5]))
    offset = torch.tensor([[2.5, -3.25], [-1.0, 3.5]])
    moved = warp(x, affine_flow(matrix, offset, 64, 64))
    inverse = torch.linalg.inv(matrix)
    back = warp(moved, affine_flow(inverse, -torch.bmm(inverse, offset.unsqueeze(-1)).squeeze(-1), 64, 64))
    assert float((back - x)[..., 8:-8, 8:-8].pow(2).mean()) > 100 * max(identity, 1e-9)


def test_affine_flow_of_a_rotation_about_the_centre() -> None:
    flow = affine_flow(similarity(torch.ones(1), torch.tensor([90.0 / 4])), torch.zeros(1, 2), 33, 33)
    assert flow[0, :, 16, 16].abs().max() < 1e-5  # the centre stays
    corner = flow[0, :, 0, 32] + torch.tensor([16.0, -16.0])  # the corner's new position relative to the centre
    assert corner.norm() == pytest.approx(16 * math.sqrt(2), rel=1e-4)  # rotation keeps distances


def test_draws_are_seeded_and_within_the_ranges() -> None:
    motion = SyntheticMotion(max_shift=3, max_zoom=0.1, max_rotation=5)
    x = torch.rand(64, 3, 8, 8)
    a = motion.pairs(x, None, step=7)
    assert torch.equal(a.flow, motion.pairs(x, None, step=7).flow)
    assert not torch.equal(a.flow, motion.pairs(x, None, step=8).flow)
    matrix, offset = motion.transforms(500, torch.Generator().manual_seed(0))
    zoom = torch.linalg.det(matrix).sqrt()
    assert offset.abs().max() <= 3 and offset.abs().max() > 2.5
    assert zoom.min() >= 1 / 1.1 - 1e-6 and zoom.max() <= 1.1 + 1e-6 and zoom.max() > 1.08


def test_bad_ranges_and_video_motion_without_pairs_are_clear_errors() -> None:
    with pytest.raises(NSTError, match="max_zoom"):
        SyntheticMotion(max_zoom=1.5)
    with pytest.raises(NSTError, match="data=video"):
        VideoMotion().pairs(torch.rand(1, 3, 8, 8), None, step=0)
    assert NoMotion().pairs(torch.rand(1, 3, 8, 8), None, step=0) is None


def test_temporal_term_is_in_the_backpropagated_total(synthetic_root: DictConfig, tmp_path: Path) -> None:
    """Only the temporal weight on: the returned total is the temporal term, and its gradient reaches the net."""
    cfg = copy_config(
        synthetic_root, tmp_path, "loss.content_weight=0", "loss.style_weight=0", "loss.tv_weight=0", "noise.pixels=0"
    )
    module = build_module(cfg)
    assert module.temporal_enabled and not module.noise_enabled
    x = textured(32, 32).expand(2, -1, -1, -1).contiguous()
    pairs = module.temporal.pairs(x, None, step=0)
    terms = module._losses(x, None, pairs)
    assert set(terms) == {"temporal", "total"} and terms["temporal"].item() > 0
    assert torch.equal(terms["total"], terms["temporal"])
    terms["total"].backward()
    grads = [p.grad for p in module.net.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize(("temporal", "pixels", "forward"), [("off", 0, 2), ("synthetic", 0, 4), ("synthetic", 20, 6)])
def test_paired_forwards_only_when_a_term_needs_them(
    root_configs, synthetic_root: DictConfig, tmp_path: Path, temporal: str, pixels: int, forward: int
) -> None:
    """Batch 2: temporal=off with noise off runs the net on 2 images; each stability term adds a copy."""
    root = synthetic_root if temporal == "synthetic" else root_configs["train"]
    cfg = copy_config(root, tmp_path, f"noise.pixels={pixels}", "trainer.max_steps=2")
    _, module, _, recorder = fit(cfg, config_callbacks=False, limit_val_batches=0)
    assert recorder.net_batches == [forward, forward]
    for metrics in recorder.metrics:
        assert ("loss/temporal" in metrics) == (temporal == "synthetic")
        parts = sum(v for k, v in metrics.items() if k.startswith("loss/") and k != "loss/total")
        assert metrics["loss/total"] == pytest.approx(parts, rel=1e-4)
        assert all(math.isfinite(v) for v in metrics.values())


def test_temporal_config_nodes_build(synthetic_root: DictConfig) -> None:
    motion = build(synthetic_root.temporal)
    assert isinstance(motion, SyntheticMotion) and motion.max_shift == 4.0 and motion.enabled


def test_synthetic_motion_makes_a_tiny_network_more_consistent_without_losing_the_style(
    synthetic_root: DictConfig, root_configs, tmp_path: Path
) -> None:
    """Trained alike but for the temporal term, the temporal=synthetic network flickers less on the Sintel clip
    (``val/warp_error``) than the temporal=off one, and its style distance stays within 1.3x (the weight balances
    the terms of this 32 px, random-VGG run; 30x more lets the temporal term win over the style)."""
    scores = {}
    for name, root in (("off", root_configs["train"]), ("synthetic", synthetic_root)):
        cfg = copy_config(
            root, tmp_path / name, "trainer.max_steps=30", "trainer.val_check_interval=30", "noise.pixels=0",
            "loss.temporal_weight=10", "callbacks.sample_images=null", "callbacks.checkpoint_best=null",
            "callbacks.checkpoint_last=null", "callbacks.export_weights=null",
        )  # fmt: skip
        trainer, *_ = fit(cfg, limit_val_batches=1)
        scores[name] = {k: float(trainer.callback_metrics[f"val/{k}"]) for k in ("warp_error", "style_distance")}
    assert scores["synthetic"]["warp_error"] < 0.8 * scores["off"]["warp_error"], scores
    assert scores["synthetic"]["style_distance"] < 1.3 * scores["off"]["style_distance"], scores
