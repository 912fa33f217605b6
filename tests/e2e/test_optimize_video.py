"""optimize.py on videos, end to end through the Hydra entry point, in-process (no interpreter start-up each).

Every method runs on an mp4 with audio (fps and audio kept); the default method also on a GIF and a frame
folder (reading and writing do not depend on the method, the loop does not depend on the input). Ctrl-C
keeps the finished frames and prints the resume command; the resumed run computes only the missing frames.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image

from nst.io.frames import FrameFolderWriter, finished_frames
from nst.io.video import open_video
from tests.clips import moving_square_clip
from tests.helpers import load_entry, make_image, wandb_history
from tests.io.helpers import audio_seconds, frame_image, write_clip, write_gif

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["vgg.weights=random", "loss.style_weight=1e9", "max_size=64", "logger=none", "iterations=2",
         "video.first_frame_iterations=2", "video.metrics=false", "video.long_term=[1,2]"]
METHODS = ["naive", "prev_style", "temporal_init", "temporal_loss", "temporal", "consistent"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def entry():
    return load_entry("optimize").main


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """An mp4 (64x48, 12 fps, 6 frames, AAC tone), a GIF (10 fps, 4 frames) and a frame folder (4 frames)."""
    folder = tmp_path_factory.mktemp("media")
    with FrameFolderWriter(folder / "frames") as writer:
        for frame in moving_square_clip(4, 48, 64):
            writer.write(frame)
    return {"mp4": write_clip(folder / "clip.mp4", frames=6), "gif": write_gif(folder / "anim.gif", [100] * 4),
            "folder": folder / "frames"}


def optimize(entry, monkeypatch, run: Path, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["optimize.py", *SMALL, f"hydra.run.dir={run}", *args])
    entry()


@pytest.mark.parametrize("method", METHODS)
def test_each_method_writes_every_frame_of_an_mp4_with_its_fps_and_audio(entry, media, monkeypatch, tmp_path,
                                                                         method) -> None:
    optimize(entry, monkeypatch, tmp_path, f"content={media['mp4']}", f"video.method={method}", "video.max_frames=3")
    output = tmp_path / "stylized.mp4"
    with open_video(output) as out:
        assert (out.frame_count, out.width, out.height, out.fps) == (3, 64, 48, 12)
        assert out.has_audio
    assert audio_seconds(output) == pytest.approx(3 / 12, abs=0.03)
    assert len(finished_frames(tmp_path / "frames")) == 3
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left


def test_gif_in_gif_out_and_to_wandb(entry, media, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    optimize(entry, monkeypatch, tmp_path, f"content={media['gif']}", "logger=wandb", "video.metrics=true")
    with open_video(tmp_path / "stylized.gif") as out:
        assert (out.frame_count, out.width, out.height) == (4, 64, 48)
        assert out.fps == pytest.approx(10)
    (run_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    rows = wandb_history(run_file)
    assert [r["frame"] for r in rows if "frame" in r] == [0, 1, 2, 3]
    assert rows[-1]["video/_type"] == "video-file"
    assert list(tmp_path.glob("wandb/offline-run-*/files/media/videos/*.gif"))


def test_frame_folder_in_frame_folder_out_with_side_by_side_csv_and_metrics(entry, media, monkeypatch, tmp_path,
                                                                            capsys) -> None:
    output = tmp_path / "out"
    optimize(entry, monkeypatch, tmp_path / "run", f"content={media['folder']}", f"output={output}",
             "logger=csv", "video.side_by_side=true", "video.metrics=true")
    assert len(finished_frames(output)) == 4
    with open_video(tmp_path / "out_side_by_side") as sbs:
        assert (sbs.frame_count, sbs.width, sbs.height) == (4, 128, 48)
    with open(tmp_path / "run" / "frames.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3]
    assert rows[0]["metrics/warp_error"] == "" and all(float(r["metrics/warp_error"]) >= 0 for r in rows[1:])
    assert all(float(r["loss/temporal"]) > 0 for r in rows[1:]) and int(rows[1]["iterations"]) == 2
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["frames"] == 4 and report["method"] == "consistent"
    assert report["warp_error_output"] > 0 and report["warp_error_input"] > 0 and report["style_distance"] > 0
    assert report["flow"] == "farneback"  # not DIS, the flow the temporal loss minimised (metrics_flow=auto)
    out = capsys.readouterr().out
    assert "E_warp output" in out and "style distance" in out and f"output: {output}" in out
    assert "flow farneback" in out


def test_ctrl_c_keeps_finished_frames_and_the_same_command_resumes(entry, media, monkeypatch, tmp_path,
                                                                    capsys) -> None:
    from nst.gatys.video_log import FrameLog

    args = (f"content={media['mp4']}", "video.max_frames=4")
    original, calls = FrameLog.__call__, []

    def interrupted(self, record):
        original(self, record)
        calls.append(record.frame)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(FrameLog, "__call__", interrupted)
    with pytest.raises(SystemExit) as exc:
        optimize(entry, monkeypatch, tmp_path, *args)
    assert exc.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted: 2 finished frames" in err and f"hydra.run.dir={tmp_path}" in err
    assert not (tmp_path / "stylized.mp4").exists()
    stamps = [p.stat().st_mtime_ns for p in finished_frames(tmp_path / "frames")]
    assert len(stamps) == 2

    monkeypatch.setattr(FrameLog, "__call__", original)
    optimize(entry, monkeypatch, tmp_path, *args)
    assert "resuming at step 2 of pass 0" in capsys.readouterr().err
    frames = finished_frames(tmp_path / "frames")
    assert len(frames) == 4 and [p.stat().st_mtime_ns for p in frames[:2]] == stamps
    with open_video(tmp_path / "stylized.mp4") as out:
        assert out.frame_count == 4

    stamps = [p.stat().st_mtime_ns for p in frames]
    optimize(entry, monkeypatch, tmp_path, *args)  # finished: nothing is recomputed, the output is written again
    assert "nothing left to do" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in finished_frames(tmp_path / "frames")] == stamps


def _fails(entry, monkeypatch, capsys, run: Path, *args: str) -> str:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exc:
        optimize(entry, monkeypatch, run, *args)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in err and len(errors) == 1 and err.rstrip().endswith(errors[0])
    return errors[0]


def test_a_bad_video_is_one_error_line_and_leaves_no_output(entry, monkeypatch, capsys, tmp_path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x01 not a video" * 100)
    output = tmp_path / "out" / "result.mp4"
    line = _fails(entry, monkeypatch, capsys, tmp_path / "run", f"content={broken}", f"output={output}")
    assert str(broken) in line
    assert not output.parent.exists()
    assert not (tmp_path / "run" / "frames").exists() and not (tmp_path / "run" / "input").exists()


def test_a_run_folder_of_other_settings_is_refused(entry, media, monkeypatch, capsys, tmp_path) -> None:
    optimize(entry, monkeypatch, tmp_path, f"content={media['gif']}", "video.method=naive", "video.max_frames=2")
    capsys.readouterr()
    line = _fails(entry, monkeypatch, capsys, tmp_path, f"content={media['gif']}", "video.method=temporal",
                  "video.max_frames=2")
    assert "other settings (video differ)" in line


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_outputs_over_the_input_or_foreign_frames_are_refused_and_nothing_is_lost(entry, media, monkeypatch, capsys,
                                                                                  tmp_path) -> None:
    clip, folder = Path(shutil.copy(media["mp4"], tmp_path / "clip.mp4")), tmp_path / "frames"
    shutil.copytree(media["folder"], folder)
    mine = tmp_path / "mine"
    mine.mkdir()
    make_image(mine / "frame_000000.png")
    (mine / "notes.txt").write_text("keep me")
    pair = Path(shutil.copy(clip, tmp_path / "clip_side_by_side.mp4"))
    before = {p: _snapshot(p) for p in (tmp_path, folder, mine)}
    run = tmp_path / "run"
    line = _fails(entry, monkeypatch, capsys, run, f"content={clip}", f"output={clip}")
    assert line == f"error: output {clip} is the input {clip}: writing it would destroy the input; choose another " \
                   f"output (run folder: {run})"
    line = _fails(entry, monkeypatch, capsys, run, f"content={folder}", f"output={folder}")
    assert line.startswith(f"error: output {folder} is the input {folder}")
    line = _fails(entry, monkeypatch, capsys, run, f"content={folder}", f"output={folder / 'styled'}")
    assert line.startswith(f"error: output folder {folder / 'styled'} is inside the input folder {folder}")
    line = _fails(entry, monkeypatch, capsys, run, f"content={clip}", f"output={mine}")
    assert line == (f"error: output folder {mine} is not empty and its files were not written by nst; choose a new "
                    f"or empty folder, or set overwrite=true to replace its frame_NNNNNN.png files (run folder: {run})")
    line = _fails(entry, monkeypatch, capsys, run, f"content={pair}", f"output={clip}", "video.side_by_side=true")
    assert line.startswith(f"error: output {pair} is the input {pair}")
    assert {p: _snapshot(p) for p in (tmp_path, folder, mine)} == before
    assert not (run / "input").exists() and not (run / "video_job.json").exists()

    optimize(entry, monkeypatch, run, f"content={clip}", f"output={mine}", "overwrite=true", "video.method=naive",
             "video.max_frames=2")
    assert sorted(_snapshot(mine)) == [".nst_frames", "frame_000000.png", "frame_000001.png", "notes.txt"]
    assert (mine / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(("args", "words"), [
    (["pyramid.levels=2"], "pyramid.levels=2, pyramid.iterations=null: coarse to fine is not supported for videos"),
    (["pyramid.iterations=5"], "pyramid.levels=1, pyramid.iterations=5: coarse to fine is not supported for videos"),
    (["save_every=3"], "save_every=3 is not supported for videos yet; leave it 0"),
])
def test_still_image_settings_a_video_would_ignore_are_refused(entry, media, monkeypatch, capsys, tmp_path, args,
                                                               words) -> None:
    line = _fails(entry, monkeypatch, capsys, tmp_path, f"content={media['gif']}", *args)
    assert line.startswith(f"error: {words}")
    assert not (tmp_path / "input").exists()


def test_a_run_resumes_only_the_same_settings_and_the_same_content(entry, media, monkeypatch, capsys, tmp_path) -> None:
    clip, run = Path(shutil.copy(media["gif"], tmp_path / "anim.gif")), tmp_path / "run"
    args = (f"content={clip}", "video.method=naive", "video.max_frames=2")
    optimize(entry, monkeypatch, run, *args)
    frames = _snapshot(run / "frames")
    line = _fails(entry, monkeypatch, capsys, run, *args, "style.size=40")
    assert line == (f"error: {run} holds results made with other settings (style_size differ); use another "
                    "hydra.run.dir, or delete that folder to start again")
    other = [Image.fromarray(frame_image(i + 5)) for i in range(4)]  # the same size, other pictures
    other[0].save(clip, save_all=True, append_images=other[1:], duration=[100] * 4, loop=0)
    assert "content_digest" in _fails(entry, monkeypatch, capsys, run, *args)
    shutil.copy(media["gif"], clip)
    (run / "video_job.json").unlink()
    line = _fails(entry, monkeypatch, capsys, run, *args)
    assert line == (f"error: {run} holds results but no video_job.json telling how they were made; use another "
                    "hydra.run.dir, or delete that folder to start again")
    assert _snapshot(run / "frames") == frames
