"""The report's rules on made-up rows: which method is recommended, how failures and missing numbers are written."""

from __future__ import annotations

import json
import math
from pathlib import Path

from nst.evaluation.plots import strip_indices
from nst.evaluation.report import MethodRow, which_method, write_report

INFO = {"content": "clip.mp4", "style": "udnie.jpg", "frames": 4, "width": 48, "height": 36, "encoder": "vgg19:random",
        "device": "cpu", "grid": None}


def row(name: str, warp: float, style: float, seconds: float, kind: str = "optimizer", **more) -> MethodRow:
    return MethodRow(name, kind, warp_error=warp, warp_error_per_frame=[warp] * 3, style_distance=style,
                     content_distance=0.1, seconds_per_frame=seconds, **more)


def test_the_most_consistent_method_must_keep_the_style_within_1_5x_of_naive() -> None:
    rows = [row("input", 1e-5, 9.0, None, kind="input"), row("naive", 1e-2, 1.0, 10.0),
            row("temporal", 1e-3, 1.4, 11.0), row("fast_noise", 1e-4, 1.6, 0.1, kind="fast", train_seconds=60.0)]
    text = which_method(rows)
    # fast_noise is more consistent but loses too much style; the input row is never a candidate
    assert text.startswith("**Most consistent:** `temporal` has the lowest E_warp (0.001, 0.1x naive's)")
    assert "Left out for losing too much style: `fast_noise`" in text
    assert "**Fastest:** `fast_noise` at 0.1 s per frame (after 60 s of training" in text


def test_without_naive_or_any_method_the_answer_says_so() -> None:
    assert which_method([row("input", 1e-5, 9.0, None, kind="input")]).startswith("No method finished")
    failed = row("naive", math.nan, math.nan, None).fail("boom")
    text = which_method([failed, row("consistent", 1e-3, 5.0, 3.0)])
    assert "`consistent`" in text and "naive did not run" in text


def test_failed_rows_and_missing_numbers_are_written_as_such(tmp_path: Path) -> None:
    rows = [row("input", 1e-5, 9.0, None, kind="input"), row("naive", 2e-3, 1.0, 10.0),
            MethodRow("fast", "fast").fail("weights bad.pt: not a train.py checkpoint | or anything")]
    md, js = write_report(tmp_path, rows, INFO)
    data = json.loads(js.read_text())  # strict JSON: no NaN
    fast = data["methods"][2]
    assert fast["status"] == "failed" and fast["warp_error"] is None and fast["warp_error_to_naive"] is None
    assert data["methods"][1]["warp_error_to_naive"] == 1.0
    text = md.read_text()
    assert "| fast | failed: weights bad.pt: not a train.py checkpoint / or anything | — |" in text
    assert "| naive | ok | 0.002 | 200 | 1 |" in text  # E_warp, x input, x naive


def test_the_report_names_e_warps_flow_and_adds_dis_as_a_second_column(tmp_path: Path) -> None:
    rows = [row("input", 1e-5, 9.0, None, kind="input", warp_error_dis=2e-5),
            row("naive", 2e-3, 1.0, 10.0, warp_error_dis=3e-3)]
    info = {**INFO, "metrics_flow": "farneback", "optimizer_flow": "dis"}
    md, js = write_report(tmp_path, rows, info)
    text = md.read_text()
    assert "with **farneback** flows" in text and "the optimizer's methods used dis flows" in text
    assert "| method | status | E_warp (farneback) | × input | × naive | E_warp (dis) | style distance |" in text
    assert "| naive | ok | 0.002 | 200 | 1 | 0.003 | 1 |" in text  # the headline E_warp is the independent flow's
    data = json.loads(js.read_text())
    assert data["metrics_flow"] == "farneback" and data["methods"][1]["warp_error_dis"] == 3e-3
    md, _ = write_report(tmp_path, [row("naive", 2e-3, 1.0, 10.0)], {**INFO, "metrics_flow": "dis"})
    assert "E_warp (dis) | × input" in md.read_text() and "E_warp (dis): the same" not in md.read_text()


def test_a_blend_is_named_with_its_weights(tmp_path: Path) -> None:
    info = {**INFO, "style": ["/s/udnie.jpg", "/s/starry_night.jpg"], "style_blend": [0.7, 0.3]}
    md, _ = write_report(tmp_path, [row("naive", 2e-3, 1.0, 10.0)], info)
    assert md.read_text().startswith("# Evaluation: clip.mp4 in the style of udnie.jpg (0.7) + starry_night.jpg (0.3)")


def test_the_strip_shows_first_middle_and_last_frames() -> None:
    assert strip_indices(9) == [0, 4, 8]
    assert strip_indices(2) == [0, 1]
    assert strip_indices(10, columns=4) == [0, 3, 6, 9]
