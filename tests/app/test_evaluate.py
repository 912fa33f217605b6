"""evaluate.py reuses what an earlier run in its folder made (input frames, trained networks) only when that run
had the same settings and the same clip; anything else is one error line, and nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from nst.app.evaluate import Evaluation
from nst.app.evaluate_fast import TRAINED, fast_network
from nst.errors import NSTError
from nst.evaluation.report import MethodRow
from tests.conftest import TEST_OVERRIDES
from tests.helpers import compose_config, make_image
from tests.io.helpers import write_clip


def _config(run: Path, clip: Path, *overrides: str):
    return compose_config("evaluate", [*TEST_OVERRIDES["optimize"], f"paths.output_dir={run}", f"content={clip}",
                                       "video.max_frames=3", "device=cpu", *overrides])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_stored_input_frames_are_reused_only_for_the_same_clip_and_selection(tmp_path: Path) -> None:
    clip, run = write_clip(tmp_path / "clip.mp4", frames=4, audio=False), tmp_path / "run"
    assert Evaluation(_config(run, clip)).count == 3
    frames = _snapshot(run / "input")
    assert Evaluation(_config(run, clip)).count == 3  # the same clip: the stored frames are reused
    with pytest.raises(NSTError, match=r"other settings \(max_frames differ\)"):
        Evaluation(_config(run, clip, "video.max_frames=2"))
    write_clip(clip, frames=4, audio=False, noise=True)  # another clip under the same name
    with pytest.raises(NSTError, match=r"content_bytes, content_digest differ") as exc:
        Evaluation(_config(run, clip))
    assert "\n" not in str(exc.value)
    assert _snapshot(run / "input") == frames


def test_a_network_is_reused_only_when_trained_with_the_same_settings(tmp_path: Path, monkeypatch, capsys) -> None:
    trained = []

    def fake_train(cfg) -> None:
        trained.append(cfg)
        (tmp_path / "fast" / "train" / TRAINED).write_bytes(b"network")

    monkeypatch.setattr("nst.app.evaluate_fast.train", fake_train)
    monkeypatch.setattr("nst.app.evaluate_fast.load_weights", lambda path, map_location: Path(path).read_bytes())
    style = make_image(tmp_path / "style.png")
    cfg = _config(tmp_path / "run", tmp_path / "clip.mp4", f"style.image={style}")
    monkeypatch.setattr("hydra.compose", lambda name, overrides: OmegaConf.create(
        {"trainer": {"max_steps": 1}, "data": {"image_size": 32}}))
    folder, cpu = tmp_path / "fast", torch.device("cpu")

    def network(*overrides: str) -> bytes:
        merged = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        return fast_network(merged, "fast", folder, tmp_path / "run" / "input", MethodRow("fast", "fast"), cpu)

    (folder / "train").mkdir(parents=True)
    (folder / "train" / TRAINED).write_bytes(b"someone else's")
    with pytest.raises(NSTError, match="holds results but no network_job.json"):
        network()
    assert (folder / "train" / TRAINED).read_bytes() == b"someone else's" and not trained
    (folder / "train" / TRAINED).unlink()
    assert network() == b"network" and len(trained) == 1
    assert network() == b"network" and len(trained) == 1
    assert "fast: reusing the network trained in" in capsys.readouterr().out
    with pytest.raises(NSTError, match=r"other settings \(overrides differ\)"):
        network("fast_training.steps=7")
    make_image(style, seed=1)  # another picture under the same name
    with pytest.raises(NSTError, match=r"other settings \(style_digest differ\)"):
        network()
    assert len(trained) == 1
