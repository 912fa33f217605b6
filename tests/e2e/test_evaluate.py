"""evaluate.py end to end, in-process, on a tiny clip with audio (48 px, 4 frames): every default method runs and
the report, the plots and the grid video are written; the numbers are those of ``python -m nst.metrics`` with a
flow the optimizer did not use; the fast networks train on photos, not the clip; a blend is scored with its
weights; a method that fails is a row of the report; a rerun in the same folder reuses what is finished."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nst.flow.opencv import DISFlow
from nst.io.video import open_video
from nst.metrics import warping_error
from tests.helpers import load_entry, wandb_history
from tests.io.helpers import write_clip

ROOT = Path(__file__).resolve().parents[2]
SMALL = [
    "vgg.weights=random", "loss.style_weight=1e9", "max_size=48", "iterations=2", "video.first_frame_iterations=2",
    "video.long_term=[1,2]", "fast_training.steps=2", "fast_training.image_size=32",
    "fast_training.content_weight=1000", "fast_training.style_weight=4e8",
    "fast_training.overrides=['model.net.base_channels=8','model.net.num_residual=1','trainer.enable_progress_bar=false']",
]
METHODS = ["naive", "temporal_init", "temporal", "consistent", "shipped", "fast", "fast_noise", "fast_temporal"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def entry():
    return load_entry("evaluate").main


def evaluate(entry, run: Path, *args: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["evaluate.py", *SMALL, f"hydra.run.dir={run}", *args])
        entry()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=4, size=(64, 48))


@pytest.fixture(scope="module")
def report(entry, clip, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("evaluate") / "run"
    evaluate(entry, run, f"content={clip}", f"methods=[{','.join(METHODS)}]")
    return run


def test_every_method_is_reported_with_finite_numbers(report: Path) -> None:
    data = json.loads((report / "report.json").read_text())
    rows = {m["name"]: m for m in data["methods"]}
    assert list(rows) == ["input", *METHODS]
    for name, row in rows.items():
        assert row["status"] == "ok", (name, row["reason"])
        for key in ("warp_error", "style_distance", "content_distance"):
            assert row[key] is not None and math.isfinite(row[key]) and row[key] >= 0, (name, key)
        assert len(row["warp_error_per_frame"]) == 3  # frames 1..3 against their warped predecessor
        if name != "input":
            assert row["seconds_per_frame"] > 0 and Path(row["video"]).is_file()
    assert all(rows[m]["train_seconds"] > 0 for m in ("fast", "fast_noise", "fast_temporal"))
    # the shipped network is loaded, not trained, and paints the evaluation's style (style=udnie)
    assert rows["shipped"]["train_seconds"] is None
    assert rows["shipped"]["settings"] == {"weights": "six_styles.pt", "style": "udnie"}
    assert data["metrics_flow"] == "farneback"  # flow=dis (the default) optimised the temporal terms
    assert all(row["warp_error_dis"] > 0 for row in rows.values())  # DIS's E_warp, the second column
    assert rows["naive"]["warp_error_to_naive"] == pytest.approx(1.0)
    assert rows["input"]["content_distance"] == 0  # the input against itself
    markdown = (report / "report.md").read_text()
    assert all(f"| {name} | ok |" in markdown for name in rows) and "## Which method?" in markdown
    assert "| E_warp (farneback) |" in markdown and "| E_warp (dis) |" in markdown
    assert data["which_method"] in markdown and "**Fastest:**" in data["which_method"]
    for picture in ("warp_error_per_frame.png", "style_vs_warp.png", "frame_strip.png"):
        assert (report / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"({picture})" in markdown


def test_the_table_is_what_nst_metrics_gives_for_the_same_output(report: Path, tmp_path: Path) -> None:
    naive = next(m for m in json.loads((report / "report.json").read_text())["methods"] if m["name"] == "naive")
    out = tmp_path / "naive.json"
    subprocess.run(
        [sys.executable, "-m", "nst.metrics", f"input={report / 'input'}", f"output={report / 'naive' / 'frames'}",
         f"style.image={ROOT / 'assets' / 'styles' / 'udnie.jpg'}", "vgg.weights=random", f"json={out}",
         "flow=farneback"],
        check=True, cwd=ROOT, capture_output=True,
    )
    measured = json.loads(out.read_text())
    assert naive["warp_error"] == pytest.approx(measured["warp_error_output"], rel=1e-6)
    assert naive["style_distance"] == pytest.approx(measured["style_distance"], rel=1e-6)
    with open_video(report / "input") as inputs, open_video(report / "naive" / "frames") as outputs:
        dis = warping_error(inputs, outputs, DISFlow()).mean
    assert naive["warp_error_dis"] == pytest.approx(dis, rel=1e-6) and dis != pytest.approx(naive["warp_error"])


def test_the_fast_networks_train_on_photos_not_on_the_clip(report: Path) -> None:
    rows = {m["name"]: m for m in json.loads((report / "report.json").read_text())["methods"]}
    for name in ("fast", "fast_noise", "fast_temporal"):
        config = yaml.safe_load((report / name / "train" / "config.yaml").read_text())
        assert Path(config["data"]["root"]) == ROOT / "assets" / "content", name
        assert rows[name]["settings"]["data"] == "content"


def test_training_on_the_clips_own_frames_is_one_error_line(entry, clip: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        evaluate(entry, run, f"content={clip}", "methods=[fast]", f"fast_training.data={run / 'input'}")
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in err
    assert "error: fast_training.data=" in err and "holds the evaluated clip's frames" in err


def test_the_grid_video_shows_every_method_with_the_input_audio(report: Path, clip: Path) -> None:
    with open_video(report / "grid.mp4") as grid, open_video(clip) as source:
        frames = list(grid.arrays())
        assert grid.has_audio and source.has_audio and grid.fps == pytest.approx(source.fps)
    assert len(frames) == 4
    # 9 tiles (input + 8 methods) in 3 columns and 3 rows, each at least 240 px on its long side
    assert frames[0].shape[1] >= 3 * 240 and frames[0].shape[0] >= 3 * 180
    with open_video(report / "naive" / "stylized.mp4") as naive:
        assert naive.has_audio


def test_a_rerun_reuses_finished_frames_and_networks(entry, report: Path, clip: Path, tmp_path: Path, capfd) -> None:
    run = tmp_path / "run"
    shutil.copytree(report, run)
    evaluate(entry, run, f"content={clip}", "methods=[naive,fast_noise]")
    out, err = capfd.readouterr()
    assert "fast_noise: reusing the network trained in" in out and "nothing left to do" in err
    assert "naive: E_warp (farneback flow) " in out
    rows = json.loads((run / "report.json").read_text())["methods"]
    before = {m["name"]: m for m in json.loads((report / "report.json").read_text())["methods"]}
    assert [m["name"] for m in rows] == ["input", "naive", "fast_noise"]
    assert rows[1]["warp_error"] == pytest.approx(before["naive"]["warp_error"], rel=1e-6)
    assert rows[2]["train_seconds"] == pytest.approx(before["fast_noise"]["train_seconds"])


def test_a_failing_method_is_reported_and_the_report_still_written(
    entry, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    evaluate(entry, tmp_path / "run", f"content={clip}", "methods=[naive,fast]", f"fast.weights={bad}",
             "logger=wandb")
    rows = {m["name"]: m for m in json.loads((tmp_path / "run" / "report.json").read_text())["methods"]}
    assert rows["naive"]["status"] == "ok" and rows["fast"]["status"] == "failed"
    assert "bad.pt" in rows["fast"]["reason"] and "\n" not in rows["fast"]["reason"]
    assert (tmp_path / "run" / "fast" / "error.txt").is_file()
    assert "| fast | failed: " in (tmp_path / "run" / "report.md").read_text()
    assert "error: fast failed" in capfd.readouterr().out
    (run_file,) = (tmp_path / "wandb_dir" / "wandb").glob("offline-run-*/run-*.wandb")
    logged = {key.split("/")[0] for row in wandb_history(run_file) for key in row}  # media: <name>/_type, ...
    assert {"report", "warp_error_per_frame", "style_vs_warp", "frame_strip", "grid"} <= logged, sorted(logged)


def test_unknown_methods_are_one_error_line(entry, clip: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        evaluate(entry, tmp_path / "run", f"content={clip}", "methods=[naive,fastest]")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "error: methods: unknown fastest; choose from naive" in err and "Traceback" not in err


def test_a_multirun_writes_one_report_per_style(entry, clip: Path, tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["evaluate.py", "-m", *SMALL, f"content={clip}", "methods=[naive]",
                                 "style=udnie,starry_night", f"hydra.sweep.dir={tmp_path / 'sweep'}"])
        entry()
    reports = [json.loads((tmp_path / "sweep" / job / "report.json").read_text()) for job in ("0", "1")]
    assert [Path(r["style"]).name for r in reports] == ["udnie.jpg", "starry_night.jpg"]
    assert reports[0]["methods"][1]["style_distance"] != reports[1]["methods"][1]["style_distance"]


def test_a_blend_is_scored_against_both_style_images_with_their_weights(entry, clip, report, tmp_path) -> None:
    udnie, starry = (ROOT / "assets" / "styles" / f"{name}.jpg" for name in ("udnie", "starry_night"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["evaluate.py", "-m", *SMALL, f"content={clip}", "methods=[naive]",
                                 f"style.image=['{udnie}','{starry}']", "style.blend=[0.9,0.1],[0.1,0.9]",
                                 f"hydra.sweep.dir={tmp_path / 'sweep'}"])
        entry()
    reports = [json.loads((tmp_path / "sweep" / job / "report.json").read_text()) for job in ("0", "1")]
    assert [r["style_blend"] for r in reports] == [[0.9, 0.1], [0.1, 0.9]]
    assert [Path(p).name for p in reports[0]["style"]] == ["udnie.jpg", "starry_night.jpg"]
    only_udnie = json.loads((report / "report.json").read_text())["methods"][0]["style_distance"]
    # the input row: the same frames each time, so only the style target differs
    mostly_udnie, mostly_starry = (r["methods"][0]["style_distance"] for r in reports)
    assert len({only_udnie, mostly_udnie, mostly_starry}) == 3
    assert abs(mostly_udnie - mostly_starry) > 0.05 * min(mostly_udnie, mostly_starry)
    assert "udnie.jpg (0.9) + starry_night.jpg (0.1)" in (tmp_path / "sweep" / "0" / "report.md").read_text()


def test_by_default_the_fast_row_is_the_shipped_network_and_it_paints_only_its_own_styles(
        entry, clip: Path, tmp_path: Path) -> None:
    assert yaml.safe_load((ROOT / "conf" / "evaluate.yaml").read_text())["methods"][-1] == "shipped"
    run = tmp_path / "run"
    other = ROOT / "assets" / "styles" / "starry_night.jpg"
    evaluate(entry, run, f"content={clip}", "methods=[naive,shipped]", f"style.image={other}")
    rows = {m["name"]: m for m in json.loads((run / "report.json").read_text())["methods"]}
    assert rows["naive"]["status"] == "ok"  # the failing row does not stop the report
    assert rows["shipped"]["status"] != "ok" and "score it with style=NAME" in rows["shipped"]["reason"]
    evaluate(entry, tmp_path / "run2", f"content={clip}", "methods=[shipped]", "style=great_wave")
    (row,) = [m for m in json.loads((tmp_path / "run2" / "report.json").read_text())["methods"] if m["name"] != "input"]
    assert row["status"] == "ok" and row["settings"]["style"] == "great_wave"
