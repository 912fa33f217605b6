"""Callbacks of the Gatys loop (nst.gatys.callbacks): curves as CSV and PNG, and the callbacks of a logger config."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from nst.errors import NSTError
from nst.gatys.callbacks import LossCurves, ProgressBar, WandbRun, build_callbacks, save_loss_plot, write_curves_csv
from tests.gatys.conftest import NAMES


def test_curves_csv_and_plot_files(tmp_path: Path) -> None:
    history = {"loss/content": [0.0, 0.5, 0.25], "loss/style": [9.0, 3.0, 1.0], "loss/tv": [0.0] * 3,
               "loss/total": [9.0, 3.5, 1.25]}
    rows = list(csv.DictReader(open(write_curves_csv(history, tmp_path / "c.csv"))))
    assert list(rows[0]) == ["iteration", *NAMES]
    assert [float(r["loss/total"]) for r in rows] == history["loss/total"] and rows[-1]["iteration"] == "2"
    png = save_loss_plot(history, tmp_path / "c.png", "title")
    with Image.open(png) as img:
        assert img.format == "PNG" and img.width > 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "c.png"]  # no temp files left


def test_build_callbacks_reads_the_logger_config(tmp_path: Path) -> None:
    kinds = lambda cbs: [type(cb) for cb in cbs]  # noqa: E731
    assert kinds(build_callbacks({}, tmp_path, {}, 5)) == [ProgressBar]
    assert kinds(build_callbacks({"csv": {"name": "csv"}}, tmp_path, {}, 5, progress=False)) == [LossCurves]
    both = build_callbacks({"csv": {}, "wandb": {"project": "p"}}, tmp_path, {}, 5, progress=False)
    assert kinds(both) == [LossCurves, WandbRun] and both[1].run is None  # W&B starts lazily
    with pytest.raises(NSTError, match="tensorboard"):
        build_callbacks({"tensorboard": {}}, tmp_path, {}, 5)
    LossCurves(tmp_path).on_end(None)  # a failed run writes no curves
    assert not list(tmp_path.iterdir())


