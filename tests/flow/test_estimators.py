"""Flow estimators: DIS and Farneback recover a known shift; RAFT loads weights (random here, no downloads);
each Hydra flow config is exactly its estimator's constructor."""

from __future__ import annotations

import inspect
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from nst.errors import NSTError
from nst.flow import FlowEstimator, warp
from nst.flow.opencv import DISFlow, FarnebackFlow
from nst.flow.raft import RAFTFlow
from tests.clips import runner_clip, textured

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize("estimator", [DISFlow(), DISFlow(scale=2), FarnebackFlow()], ids=lambda e: e.name)
@pytest.mark.parametrize(("dx", "dy"), [(3, -2), (-5, 4)])
def test_opencv_estimators_recover_a_shift_within_half_a_pixel(estimator: FlowEstimator, dx: int, dy: int) -> None:
    previous = textured(96, 96, seed=3)
    current = torch.roll(previous, shifts=(dy, dx), dims=(2, 3))
    flow = estimator(current, previous)  # backward flow of the current frame: (-dx, -dy) everywhere
    assert flow.shape == (1, 2, 96, 96) and flow.dtype == torch.float32
    error = (flow[0, :, 16:-16, 16:-16] - torch.tensor([-dx, -dy]).view(2, 1, 1)).abs()
    assert error.max() < 0.5
    inner = (..., slice(16, -16), slice(16, -16))
    assert (warp(previous, flow) - current)[inner].abs().mean() < 0.01


def test_dis_on_enlarged_frames_follows_a_thin_fast_figure_better() -> None:
    frames, alphas = runner_clip(4, 64, 96, step=4.0, pan=(-1.0, 0.0), background=textured(128, 192, seed=3),
                                 skin=textured(64, 96, seed=4).pow(2))
    body = alphas[2][0, 0] > 0.5
    errors = {}
    for scale in (1, 2):
        flow = DISFlow(scale=scale)(frames[2], frames[1])  # the figure moved 4 px right: its backward flow is -4
        errors[scale] = float((flow[0, 0][body] + 4.0).abs().mean())
    assert errors[2] < 0.7 * errors[1], errors
    assert DISFlow(scale=2).name == "dis-medium-x2" and DISFlow().name == "dis-medium"
    with pytest.raises(NSTError, match="scale"):
        DISFlow(scale=8)


def test_estimators_take_batches_and_reject_mismatched_frames() -> None:
    frames = torch.cat([textured(48, 64, seed=s) for s in range(2)])
    moved = torch.roll(frames, shifts=2, dims=3)
    flow = DISFlow("fast")(moved, frames)
    assert flow.shape == (2, 2, 48, 64)
    assert (flow[:, 0, 12:-12, 12:-12] + 2).abs().mean() < 0.25
    with pytest.raises(ValueError):
        DISFlow()(frames, frames[:, :, :40])
    with pytest.raises(NSTError, match="preset"):
        DISFlow("slow")
    assert FarnebackFlow().name != FarnebackFlow(winsize=21).name  # settings that change the flow change the name


def test_raft_with_random_weights_and_a_saved_state_dict(tmp_path: Path) -> None:
    random = RAFTFlow("small", weights="random", num_flow_updates=2, device="cpu")
    path = tmp_path / "raft_small.pth"
    torch.save(random.net.state_dict(), path)
    loaded = RAFTFlow("small", weights=str(path), num_flow_updates=2, device="cpu")
    frames = textured(40, 56, seed=0)  # not a multiple of 8, below RAFT's 128 px: padded inside
    moved = torch.roll(frames, shifts=3, dims=3)
    flow = random(moved, frames)
    assert flow.shape == (1, 2, 40, 56) and flow.device.type == "cpu" and torch.isfinite(flow).all()
    torch.testing.assert_close(loaded(moved, frames), flow)
    assert loaded.name != random.name and "raft-small" in loaded.name


def test_raft_weight_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(NSTError) as info:
        RAFTFlow("small")
    message = str(info.value)
    assert "\n" not in message and "flow.weights=" in message and "raft_small_C_T_V2" in message
    assert "checkpoints" in message  # the second option: put the file in torch's hub cache
    with pytest.raises(NSTError, match="no such file"):
        RAFTFlow("small", weights=str(tmp_path / "missing.pth"))
    (tmp_path / "bad.pth").write_text("not a checkpoint")
    with pytest.raises(NSTError, match="cannot read"):
        RAFTFlow("small", weights=str(tmp_path / "bad.pth"))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(NSTError, match="not a RAFT-small state dict"):
        RAFTFlow("small", weights=str(tmp_path / "other.pth"))


@pytest.mark.parametrize(
    ("name", "overrides", "cls"),
    [("dis", [], DISFlow), ("farneback", [], FarnebackFlow), ("raft", ["flow.weights=random"], RAFTFlow),
     ("raft_small", ["flow.weights=random"], RAFTFlow)],
)
def test_each_flow_config_is_its_constructor(name: str, overrides: list[str], cls: type) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(overrides=[f"+flow={name}", *overrides]).flow
    parameters = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert set(cfg) - {"_target_"} == parameters
    estimator = instantiate(cfg)
    assert isinstance(estimator, cls)
    if name == "raft_small":
        assert estimator.model == "small"


def test_metrics_flow_auto_never_picks_the_flow_the_method_used() -> None:
    from nst.flow.named import build_estimator, family, metrics_flow

    assert metrics_flow("auto", "nst.flow.opencv.DISFlow") == "farneback"
    assert metrics_flow("auto", "dis-medium") == "farneback"
    assert metrics_flow("auto", "nst.flow.opencv.FarnebackFlow") == "dis"
    assert metrics_flow("auto", "nst.flow.raft.RAFTFlow") == "dis"
    assert metrics_flow("auto", None) == "dis" and metrics_flow("dis", "nst.flow.opencv.DISFlow") == "dis"
    assert family("raft-small") == "raft" and family("nst.flow.opencv.FarnebackFlow") == "farneback"
    assert build_estimator("farneback").name == "farneback" and build_estimator("dis").name == "dis-medium"
    with pytest.raises(NSTError, match="metrics_flow must be one of auto, dis, farneback, raft"):
        metrics_flow("pwc", None)
