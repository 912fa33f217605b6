"""Scaling out through hydra-submitit-launcher, as real processes without a cluster (submitit_local): a sweep of
optimize.py, and one video in two chunks: a failing chunk reported in one line, the rerun running only that
chunk, the stitched video whole (frames, fps, audio), and a last rerun redoing nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nst.io.frames import finished_frames
from nst.io.video import open_video
from tests.io.helpers import audio_seconds, write_clip

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["vgg.weights=random", "loss.style_weight=1e9", "max_size=48", "logger=none", "iterations=2",
         "hydra/launcher=submitit_local"]
VIDEO = ["video.first_frame_iterations=2", "video.long_term=[1,2]", "video.chunks=2", "video.overlap=3"]


def optimize(tmp: Path, *args: str, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "WANDB_API_KEY")}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))  # the jobs import nst too
    cmd = [sys.executable, str(ROOT / "optimize.py"), *flags, *SMALL, *args]
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


def test_a_sweep_runs_one_local_job_per_point_in_its_own_run_folder(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    done = optimize(tmp_path, "loss.style_weight=1e8,1e9", f"hydra.sweep.dir={sweep}", flags=("-m",))
    assert done.returncode == 0, done.stderr
    for job, weight in (("0", 1e8), ("1", 1e9)):
        assert (sweep / job / "stylized.png").is_file()
        assert OmegaConf.load(sweep / job / "config.yaml").loss.style_weight == weight
        assert (sweep / job / "optimize.log").is_file()  # Hydra's job log, as in a local run
    assert len(list(sweep.glob(".submitit/*/*_0_log.out"))) == 2  # two submitit jobs, each with its log


def test_a_chunked_video_fails_in_one_line_reruns_only_that_chunk_and_then_redoes_nothing(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=10, size=(64, 48), fps=12)
    run = tmp_path / "run"
    args = (f"content={clip}", *VIDEO, f"hydra.run.dir={run}")
    (run / "chunks" / "1").mkdir(parents=True)
    (run / "chunks" / "1" / "video_job.json").write_text("{}\n")  # chunk 1 will refuse to run: other settings

    failed = optimize(tmp_path, *args, "video.metrics=false")
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, failed.stderr
    assert "1 of 2 chunks failed: chunk 1 (frames 4-9): " in errors[0] and f"hydra.run.dir={run}" in errors[0]
    chunk0 = finished_frames(run / "chunks" / "0" / "frames")
    assert len(chunk0) == 7 and not (run / "stylized.mp4").exists()
    stamps = [p.stat().st_mtime_ns for p in chunk0]

    (run / "chunks" / "1" / "video_job.json").unlink()
    rerun = optimize(tmp_path, *args)
    assert rerun.returncode == 0, rerun.stderr
    assert "1 finished, 1 to run" in rerun.stdout and "chunks 2/2 done, frames 13/13" in rerun.stderr
    assert [p.stat().st_mtime_ns for p in finished_frames(run / "chunks" / "0" / "frames")] == stamps
    with open_video(run / "stylized.mp4") as video:
        assert (video.frame_count, video.width, video.height, video.fps, video.has_audio) == (10, 48, 36, 12, True)
    assert audio_seconds(run / "stylized.mp4") == pytest.approx(10 / 12, abs=0.03)
    report = json.loads((run / "metrics.json").read_text())
    assert report["frames"] == 10 and report["seam_warp_error_max"] > 0 and report["seam_inside_warp_error"] > 0
    assert "seam ratio" in rerun.stdout

    logs = sorted((run / "chunks" / "logs").iterdir())
    stitched = [p.stat().st_mtime_ns for p in finished_frames(run / "frames")]
    again = optimize(tmp_path, *args, "video.metrics=false")
    assert again.returncode == 0, again.stderr
    assert "2 finished, 0 to run" in again.stdout and "submitted" not in again.stdout
    assert sorted((run / "chunks" / "logs").iterdir()) == logs  # no job started
    assert [p.stat().st_mtime_ns for p in finished_frames(run / "frames")] == stitched
