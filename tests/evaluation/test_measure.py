"""The one measurement (nst.evaluation.measure): its command line (``python -m nst.metrics`` too), table and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nst.errors import NSTError
from nst.evaluation.measure import main, parse_args
from nst.io.image import save_image
from nst.metrics import metric_criterion, style_content_distance
from tests.clips import flicker, moving_square_clip, textured

ROOT = Path(__file__).resolve().parents[2]
CLIP = moving_square_clip(5, 48, 64, step=2, seed=0)


def test_arguments_are_strict(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(NSTError, match="valid keys: input=, output="):
        parse_args(["input=a.mp4", "output=b.mp4", "style.image=s.jpg", "flow.preset=fast"])
    with pytest.raises(NSTError, match="missing style.image"):
        parse_args(["input=a.mp4", "output=b.mp4"])
    assert main(["input=a.mp4", "output=b.mp4", "style.image=s.jpg", "flow=pwc"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: flow must be one of dis, farneback, raft") and err.count("\n") == 1


def _frame_folder(folder: Path, frames: list[torch.Tensor]) -> Path:
    for i, frame in enumerate(frames):
        save_image(frame, folder / f"f{i}.png")
    return folder


def test_command_line_on_frame_folders(tmp_path: Path) -> None:
    inp = _frame_folder(tmp_path / "input", CLIP)
    out = _frame_folder(tmp_path / "out" / "stylized", flicker(CLIP, 0.1, seed=3))
    save_image(textured(64, 64, seed=7), tmp_path / "style.png")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    args = [f"input={inp}", f"output={out}", f"style.image={tmp_path / 'style.png'}", "vgg.weights=random"]
    done = subprocess.run([sys.executable, "-m", "nst.metrics", *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "E_warp output/input" in done.stdout and "style distance" in done.stdout
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["frames"] == 5 and (report["width"], report["height"]) == (64, 48)
    assert report["flow"] == "dis-medium" and report["warp_error_ratio"] > 5
    assert len(report["per_frame"]["warp_error_output"]) == 4


def test_a_vgg16_encoder_measures_and_the_command_line_takes_its_arch(vgg16_weights: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    """HED's encoder is a VGG-16: the distances run on it (relu1_1..relu5_1, relu4_2 exist there too)."""
    criterion = metric_criterion(f"vgg16:{vgg16_weights}")
    assert criterion.encoder.arch == "vgg16" and criterion.encoder.label == f"vgg16:{vgg16_weights}"
    criterion.set_style(textured(64, 64, seed=7))
    assert style_content_distance(CLIP[0], CLIP[0], criterion)[0] > 0
    inp = _frame_folder(tmp_path / "input", CLIP[:3])
    out = _frame_folder(tmp_path / "out", flicker(CLIP[:3], 0.1, seed=3))
    save_image(textured(64, 64, seed=7), tmp_path / "style.png")
    args = [f"input={inp}", f"output={out}", f"style.image={tmp_path / 'style.png'}", f"json={tmp_path / 'm.json'}"]
    assert main([*args, "vgg.arch=vgg16", f"vgg.weights={vgg16_weights}"]) == 0
    assert f"encoder vgg16:{vgg16_weights}" in capsys.readouterr().out
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["encoder"] == f"vgg16:{vgg16_weights}" and report["style_distance"] > 0
    assert main([*args, f"vgg.weights={vgg16_weights}"]) == 1  # a VGG-19 by default: one line naming vgg.arch
    assert "not a VGG-19 state dict" in capsys.readouterr().err


def test_a_blend_is_scored_against_every_style_image_with_its_weight(tmp_path: Path) -> None:
    inp = _frame_folder(tmp_path / "input", CLIP[:2])
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    save_image(textured(64, 64, seed=7), a)
    save_image(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)), b)

    def distance(*style: str) -> float:
        args = [f"input={inp}", f"output={inp}", "vgg.weights=random", f"json={tmp_path / 'm.json'}", *style]
        return main(args) or json.loads((tmp_path / "m.json").read_text())["style_distance"]

    only_a = distance(f"style.image={a}")
    assert distance(f"style.image=[{a},{b}]", "style.blend=[1,0]") == pytest.approx(only_a, rel=1e-5)
    mostly_a = distance(f"style.image=[{a},{b}]", "style.blend=[0.9,0.1]")
    mostly_b = distance(f"style.image=[{a},{b}]", "style.blend=[0.1,0.9]")
    assert len({only_a, mostly_a, mostly_b}) == 3 and abs(mostly_a - mostly_b) > 0.1 * min(mostly_a, mostly_b)
    assert json.loads((tmp_path / "m.json").read_text())["style_blend"] == "[0.1,0.9]"
    assert main([f"input={inp}", f"output={inp}", f"style.image=[{a},{b}]", "style.blend=[x,1]"]) == 1


def test_command_line_errors_are_one_line_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inp = _frame_folder(tmp_path / "input", CLIP[:2])
    save_image(textured(64, 64, seed=7), tmp_path / "style.png")
    common = [f"style.image={tmp_path / 'style.png'}", "vgg.weights=random", f"json={tmp_path / 'm.json'}"]
    for args in (
        [f"input={tmp_path / 'missing.mp4'}", f"output={inp}"],
        [f"input={inp}", f"output={_frame_folder(tmp_path / 'short', CLIP[:1])}"],
        [f"input={inp}", f"output={_frame_folder(tmp_path / 'tall', [textured(64, 48, seed=1)] * 2)}"],
        [f"input={inp}", f"output={inp}", "max_size=-3"],
    ):
        assert main([*args, *common]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert not (tmp_path / "m.json").exists()
