"""infer.py end to end: a video with audio in, video, side by side and metrics out; export; one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nst.fastnet.transformer_net import TransformerNet
from nst.fastnet.weights import export_weights, load_exported
from nst.io.video import open_video
from tests.helpers import load_entry, make_image
from tests.io.helpers import audio_seconds, write_clip

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return export_weights(TransformerNet(base_channels=4, num_residual=1), tmp_path_factory.mktemp("w") / "style.pt")


def _infer(python: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([python, str(ROOT / "infer.py"), *args, f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, cwd=tmp_path)


def test_video_with_side_by_side_and_metrics(tmp_path: Path, weights: Path, python: str) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=8, size=(48, 32), fps=8)
    out = tmp_path / "out" / "styled.mp4"
    run = _infer(python, tmp_path, f"weights={weights}", f"input={clip}", f"output={out}", "side_by_side=true",
                 "metrics=true", "batch_size=3")
    assert run.returncode == 0, run.stderr
    with open_video(out) as video:
        assert (video.frame_count, video.width, video.height, video.fps, video.has_audio) == (8, 48, 32, 8.0, True)
    assert abs(audio_seconds(out) - 1.0) < 0.05
    with open_video(tmp_path / "out" / "styled_side_by_side.mp4") as pair:
        assert (pair.width, pair.height) == (96, 32)
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())[str(out)]
    assert report["frames"] == 8 and report["warp_error_input"] > 0 and report["warp_error_output"] >= 0
    assert "E_warp output/input" in run.stdout
    assert "stylized 8 frame(s) in" in run.stdout and "frames/s" in run.stdout


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_export_torchscript_loads_back(tmp_path: Path, weights: Path, python: str) -> None:
    run = _infer(python, tmp_path, f"weights={weights}", "export=torchscript", f"output={tmp_path / 'net.pt'}")
    assert run.returncode == 0, run.stderr
    assert "torchscript" in run.stdout and (tmp_path / "net.pt").is_file()
    x = torch.rand(1, 3, 19, 27)  # odd, and not the size the export was checked at
    with torch.no_grad():
        assert (torch.jit.load(str(tmp_path / "net.pt"))(x) - load_exported(weights)(x)).abs().max() < 1e-5


def test_errors_are_one_line_and_leave_no_output(tmp_path: Path, weights: Path, python: str) -> None:
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    clip = write_clip(tmp_path / "clip.mp4", frames=2, audio=False)
    for args, words in [
        ([f"weights={tmp_path / 'other.pth'}", f"input={clip}"], "another architecture"),
    ]:
        run = _infer(python, tmp_path, *args, f"output={tmp_path / 'out.mp4'}")
        assert run.returncode == 1
        assert run.stderr.strip().startswith("error: ") and words in run.stderr
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "out.mp4").exists()


def test_an_output_over_its_input_is_one_error_line_and_the_input_kept(tmp_path: Path, weights: Path, monkeypatch,
                                                                       capsys) -> None:
    entry = load_entry("infer").main
    (tmp_path / "in").mkdir()
    clip = write_clip(tmp_path / "in" / "clip_side_by_side.mp4", frames=2, audio=False)
    photo = make_image(tmp_path / "in" / "photo.png")
    folder = tmp_path / "in"
    before = {p: p.read_bytes() for p in (clip, photo)}
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    for args, line in [
        ([f"input={clip}", f"output={clip}"], f"output {clip} is the input {clip}"),
        ([f"input={photo}", f"output={photo}"], f"output {photo} is the input {photo}"),
        ([f"input={folder}", f"output={folder}"], f"output {folder} is the input {folder}"),
        ([f"input={folder}", f"output={folder / 'styled'}"],
         f"output folder {folder / 'styled'} is inside the input folder {folder}"),
        ([f"input={clip}", f"output={folder / 'clip.mp4'}", "side_by_side=true"], f"output {clip} is the input {clip}"),
    ]:
        monkeypatch.setattr(sys, "argv", ["infer.py", f"weights={weights}", *args, f"hydra.run.dir={tmp_path / 'run'}"])
        with pytest.raises(SystemExit) as exc:
            entry()
        err = capsys.readouterr().err
        assert exc.value.code == 1 and err.startswith(f"error: {line}") and len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in (clip, photo)} == before
    assert sorted(p.name for p in folder.iterdir()) == ["clip_side_by_side.mp4", "photo.png"]
