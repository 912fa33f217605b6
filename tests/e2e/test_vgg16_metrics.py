"""The commands with a VGG-16 encoder, as ``vgg=hed16`` runs them (a tiny VGG-16 weights file stands in for HED's):
training validates on its features, the closing metrics of optimize.py, infer.py's and evaluate.py's distances
are measured on it and name it; a metric encoder that cannot be loaded is one warning line, never a failed run."""

from __future__ import annotations

import json
import math
import shlex
import sys
from pathlib import Path

import pytest
import torch
import yaml

from nst.evaluation.measure import main as metrics_main
from nst.fastnet.transformer_net import TransformerNet
from nst.fastnet.weights import export_weights
from nst.io.frames import FrameFolderWriter, finished_frames
from nst.io.video import open_video
from tests.clips import moving_square_clip
from tests.e2e.test_evaluate import SMALL as EVALUATE_SMALL
from tests.e2e.test_train import read_csv, run_train
from tests.helpers import load_entry, make_images
from tests.io.helpers import write_clip

ROOT = Path(__file__).resolve().parents[2]
STYLE = ROOT / "assets" / "styles" / "udnie.jpg"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corrupt") / "vgg16.pth"
    path.write_bytes(b"not a state dict" * 64)
    return path


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-frame clip (64x48, a textured square moving 2 px per frame) as a frame folder."""
    folder = tmp_path_factory.mktemp("clip") / "frames"
    with FrameFolderWriter(folder) as writer:
        for frame in moving_square_clip(4, 48, 64):
            writer.write(frame)
    return folder


def run(name: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    """``python <name>.py args...`` in-process; a user error would exit 1 (SystemExit), which fails the test."""
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *args])
    load_entry(name).main()


def warning_line(err: str) -> str:
    """The one warning of a failed measurement (and no error, no traceback)."""
    warnings = [line for line in err.splitlines() if line.startswith("warning: metrics not computed")]
    assert len(warnings) == 1 and "error: " not in err and "Traceback" not in err, err
    return warnings[0]


def test_training_validates_twice_on_the_vgg16_features(tmp_path: Path, vgg16_weights: Path) -> None:
    images = make_images(tmp_path / "images", n=10, size=(40, 40))
    run_dir = tmp_path / "run"
    proc = run_train(tmp_path, f"data.root={images}", "data.image_size=32", "vgg.arch=vgg16",
                     f"vgg.weights={vgg16_weights}", "trainer.max_steps=4", "trainer.val_check_interval=2",
                     "logger=csv", "callbacks.sample_images=null", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    label = f"vgg16:{vgg16_weights}"
    assert f"style and content distances on {label} features" in proc.stdout
    rows = [r for r in read_csv(run_dir / "csv" / "metrics.csv") if r.get("val/style_distance")]
    assert [int(r["step"]) for r in rows] == [1, 3]  # Lightning's step of validations after steps 2 and 4
    for row in rows:
        assert math.isfinite(float(row["val/warp_error"])) and float(row["val/style_distance"]) > 0
    assert yaml.safe_load((run_dir / "csv" / "hparams.yaml").read_text())["metrics/encoder"] == label


def test_a_video_run_measures_its_closing_metrics_on_its_vgg16(tmp_path, frames, vgg16_weights, monkeypatch,
                                                               capsys) -> None:
    run("optimize", monkeypatch, f"content={frames}", f"output={tmp_path / 'out'}", "vgg.arch=vgg16",
        f"vgg.weights={vgg16_weights}", "loss.style_weight=1e9", "max_size=64", "iterations=10",
        "video.first_frame_iterations=10", "video.method=naive", "logger=none", f"hydra.run.dir={tmp_path / 'run'}")
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["encoder"] == f"vgg16:{vgg16_weights}" and report["frames"] == 4
    assert report["style_distance"] > 0 and report["warp_error_output"] > 0 and report["content_distance"] > 0
    assert f"encoder vgg16:{vgg16_weights}" in capsys.readouterr().out


def test_a_failing_metric_encoder_warns_once_and_the_video_run_succeeds(tmp_path, frames, vgg16_weights, corrupt,
                                                                        monkeypatch, capsys) -> None:
    run_dir, output = tmp_path / "run", tmp_path / "out"
    run("optimize", monkeypatch, f"content={frames}", f"output={output}", "vgg.arch=vgg16",
        f"vgg.weights={vgg16_weights}", f"metrics_vgg=vgg16:{corrupt}", "max_size=64", "iterations=2",
        "video.first_frame_iterations=2", "video.method=naive", "logger=none", f"hydra.run.dir={run_dir}")
    line = warning_line(capsys.readouterr().err)
    assert str(corrupt) in line and not (run_dir / "metrics.json").exists()
    assert len(finished_frames(output)) == 4 and len(finished_frames(run_dir / "frames")) == 4
    command = shlex.split(line.split("compute the metrics with: ", 1)[1])
    assert command[:3] == ["python", "-m", "nst.metrics"] and f"vgg.weights={corrupt}" in command
    fixed = [a.replace(str(corrupt), str(vgg16_weights)) for a in command[3:]]  # once the file is repaired
    assert metrics_main(fixed) == 0
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["encoder"] == f"vgg16:{vgg16_weights}" and report["frames"] == 4


@pytest.fixture(scope="module")
def fast_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return export_weights(TransformerNet(base_channels=4, num_residual=1), tmp_path_factory.mktemp("w") / "style.pt")


@pytest.mark.parametrize("broken", [False, True], ids=["vgg16", "corrupt"])
def test_infer_metrics_on_a_vgg16_and_a_failing_encoder_only_warns(tmp_path, fast_weights, vgg16_weights, corrupt,
                                                                   monkeypatch, capsys, broken) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=4, size=(48, 32), fps=8, audio=False)
    out = tmp_path / "out" / "styled.mp4"
    encoder = f"vgg16:{corrupt if broken else vgg16_weights}"
    run("infer", monkeypatch, f"weights={fast_weights}", f"input={clip}", f"output={out}", "engine=torch",
        "metrics=true", f"metrics_style={STYLE}", f"metrics_vgg={encoder}", f"hydra.run.dir={tmp_path / 'run'}")
    with open_video(out) as video:
        assert video.frame_count == 4
    captured = capsys.readouterr()
    if broken:
        line = warning_line(captured.err)
        assert f"input={clip} output={out}" in line and f"vgg.arch=vgg16 vgg.weights={corrupt}" in line
        assert not (tmp_path / "out" / "metrics.json").exists()
    else:
        report = json.loads((tmp_path / "out" / "metrics.json").read_text())[str(out)]
        assert report["encoder"] == encoder and report["style_distance"] > 0 and report["warp_error_input"] > 0
        assert f"encoder {encoder}" in captured.out and "warning" not in captured.err


def test_evaluate_measures_on_the_runs_vgg16_and_says_so(tmp_path, frames, vgg16_weights, monkeypatch) -> None:
    run("evaluate", monkeypatch, *EVALUATE_SMALL, f"content={frames}", "methods=[naive]", "vgg.arch=vgg16",
        f"vgg.weights={vgg16_weights}", "loss.style_weight=1e9", f"hydra.run.dir={tmp_path / 'run'}")
    data = json.loads((tmp_path / "run" / "report.json").read_text())
    assert data["encoder"] == f"vgg16:{vgg16_weights}"
    rows = {m["name"]: m for m in data["methods"]}
    assert rows["naive"]["status"] == "ok" and rows["naive"]["style_distance"] > 0
    assert f"encoder `vgg16:{vgg16_weights}`" in (tmp_path / "run" / "report.md").read_text()
