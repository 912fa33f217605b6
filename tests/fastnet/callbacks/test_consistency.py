"""The consistency probe (nst.fastnet.callbacks.consistency): E_warp and style distance of a fixed clip, logged every
validation, and the temporal row of the sample grid."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from nst.app.config import CONF_DIR
from nst.errors import NSTError
from nst.fastnet.callbacks.consistency import ConsistencyProbe, fit_frames
from nst.fastnet.callbacks.samples import SampleImages
from nst.io.video import open_writer
from tests.clips import flicker, moving_square_clip
from tests.fastnet.training import fit  # one thread for tiny tensors: tests/fastnet/conftest.py
from tests.helpers import copy_config

pytestmark = pytest.mark.filterwarnings(
    r"ignore:.*(does not have many workers|module\(s\) in eval mode|random weights|LeafSpec|is not empty).*"
)
SINTEL = CONF_DIR.parent / "assets" / "video" / "sintel_mountain_2.mp4"


class Flicker(nn.Module):
    """A 'network' that adds a different brightness offset on each frame it sees (frames are told apart by
    their mean), so its output flickers where the input does not."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = torch.sin(x.mean(dim=(1, 2, 3), keepdim=True) * 5000) * 0.15
        return (x + offset + self.anchor).clamp(0, 1)


def _clip_folder(folder: Path, frames: list[torch.Tensor]) -> Path:
    with open_writer(folder, fps=10, width=64, height=48) as writer:
        for frame in frames:
            writer.write(frame)
    return folder


@pytest.fixture(scope="module")
def square_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _clip_folder(tmp_path_factory.mktemp("clip") / "frames", moving_square_clip(5, 48, 64, step=2))


def probe(clip: Path, **kwargs) -> ConsistencyProbe:
    return ConsistencyProbe(clip, **({"max_frames": 5, "size": 64, "vgg_weights": "random"} | kwargs))


def test_identity_scores_the_input_and_flicker_scores_higher(square_clip: Path) -> None:
    meter = probe(square_clip, max_frames=4, size=48)
    style = [torch.rand(1, 3, 40, 50, generator=torch.Generator().manual_seed(0))]
    identity = nn.Conv2d(3, 3, 1, bias=False)
    nn.init.dirac_(identity.weight)
    exact = meter.measure(identity, style)
    assert set(exact) == {"val/warp_error", "val/warp_error_input", "val/style_distance", "val/content_distance"}
    assert all(math.isfinite(v) for v in exact.values())
    assert exact["val/warp_error"] == pytest.approx(exact["val/warp_error_input"], rel=1e-5, abs=1e-9)
    assert exact["val/content_distance"] == pytest.approx(0.0, abs=1e-9)
    flickering = meter.measure(Flicker(), style)
    assert flickering["val/warp_error"] > 10 * exact["val/warp_error"] + 1e-4
    # the reference is the input's own E_warp, whatever the network does
    assert flickering["val/warp_error_input"] == exact["val/warp_error_input"]


def test_the_reference_is_the_clips_own_warp_error(square_clip: Path, tmp_path: Path) -> None:
    """A clip that flickers by itself scores a higher input E_warp, and the identity still matches it."""
    flickering = _clip_folder(tmp_path / "flicker", flicker(moving_square_clip(5, 48, 64, step=2), 0.1, seed=1))
    style = [torch.rand(1, 3, 40, 50, generator=torch.Generator().manual_seed(0))]
    identity = nn.Conv2d(3, 3, 1, bias=False)
    nn.init.dirac_(identity.weight)
    steady = probe(square_clip, max_frames=3, size=48).measure(identity, style)
    jittery = probe(flickering, max_frames=3, size=48).measure(identity, style)
    assert jittery["val/warp_error_input"] > 5 * steady["val/warp_error_input"] + 1e-4
    assert jittery["val/warp_error"] == pytest.approx(jittery["val/warp_error_input"], rel=1e-5, abs=1e-9)


def test_the_distances_use_the_runs_encoder_a_vgg16_too(square_clip: Path, vgg16_weights: Path, capsys) -> None:
    meter = probe(square_clip, max_frames=3, size=48, vgg_weights=str(vgg16_weights), vgg_arch="vgg16")
    assert meter.encoder == f"vgg16:{vgg16_weights}"
    identity = nn.Conv2d(3, 3, 1, bias=False)
    nn.init.dirac_(identity.weight)
    scores = meter.measure(identity, [torch.rand(1, 3, 40, 50, generator=torch.Generator().manual_seed(0))])
    assert scores["val/style_distance"] > 0 and scores["val/content_distance"] == pytest.approx(0.0, abs=1e-9)
    assert meter._criterion.encoder.arch == "vgg16"
    assert f"distances on vgg16:{vgg16_weights} features" in capsys.readouterr().out
    assert probe(square_clip, vgg_weights="hed").encoder == "vgg16:hed"  # hed alone is HED's VGG-16


def test_frames_are_read_once_at_the_probe_size(square_clip: Path) -> None:
    meter = probe(square_clip, size=32, max_frames=3)
    frames = meter.frames()
    assert frames.shape == (3, 3, 24, 32) and meter.frames() is frames
    flows, masks = meter.flows()
    assert flows.shape == (2, 2, 24, 32) and masks.shape == (2, 1, 24, 32)
    assert fit_frames(torch.rand(2, 3, 30, 60), 20, 20).shape == (2, 3, 20, 20)


def test_bad_settings_and_clips_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NSTError, match="max_frames"):
        ConsistencyProbe(SINTEL, max_frames=1)
    with pytest.raises(NSTError, match="not found"):
        ConsistencyProbe(tmp_path / "missing.mp4").frames()


def test_validation_logs_finite_warp_error_and_a_temporal_sample_row(root_configs, tmp_path: Path) -> None:
    """The default callbacks on the bundled Sintel clip: val/* metrics after validation, a 4-row sample grid."""
    cfg = copy_config(
        root_configs["train"],
        tmp_path,
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "noise.pixels=0",
        "callbacks.sample_images.every_n_steps=2",
        "callbacks.checkpoint_best=null",
        "callbacks.checkpoint_last=null",
        "callbacks.export_weights=null",
    )
    trainer, *_ = fit(cfg, limit_val_batches=1)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for key in ("val/warp_error", "val/warp_error_input", "val/style_distance", "val/content_distance"):
        assert math.isfinite(metrics[key]), key
    assert metrics["val/warp_error"] > 0 and metrics["val/warp_error_input"] > 0
    meter = next(c for c in trainer.callbacks if isinstance(c, ConsistencyProbe))
    assert meter.clip == SINTEL and meter.last["val/warp_error"] == pytest.approx(metrics["val/warp_error"])
    sampler = next(c for c in trainer.callbacks if isinstance(c, SampleImages))
    with Image.open(sampler.saved[-1]) as grid:
        assert grid.size == (4 * 34 + 2, 4 * 34 + 2)  # 32 px tiles: inputs, stylized, noise row, temporal row
