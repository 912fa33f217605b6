"""Callbacks of the Gatys loop (nst.gatys.callbacks): curves as CSV and PNG, and the callbacks of a logger config."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from PIL import Image

from nst import color
from nst.errors import NSTError
from nst.gatys.callbacks import (
    LossCurves,
    ProgressBar,
    SaveProgress,
    WandbRun,
    build_callbacks,
    save_loss_plot,
    write_curves_csv,
)
from nst.gatys.loop import IterationInfo
from nst.io.image import load_image
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




def _info(iteration: int, image: torch.Tensor) -> IterationInfo:
    return IterationInfo(iteration, {"loss/total": 1.0}, image, 10)


def test_save_progress_writes_every_nth_image_atomically(tmp_path: Path) -> None:
    saver = SaveProgress(tmp_path, every=3)
    images = [torch.rand(1, 3, 32, 40) * 1.4 - 0.2 for _ in range(7)]  # not clamped, as the loop's are
    for i, image in enumerate(images):
        saver.on_iteration(_info(i, image))
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["progress/iter_0000003.png", "progress/iter_0000006.png"]  # no temp files left
    saved = load_image(tmp_path / "progress" / "iter_0000003.png", min_side=None)
    torch.testing.assert_close(saved, (images[2].clamp(0, 1) * 255).round() / 255)
    with pytest.raises(NSTError, match="save_every must be a positive number"):
        SaveProgress(tmp_path, every=-5)


def test_save_progress_restores_the_content_colours_at_any_size(tmp_path: Path) -> None:
    content = torch.rand(1, 3, 64, 80)
    gray = color.luminance_only(torch.rand(1, 3, 32, 40))  # a coarse pyramid level of a preserve_color run
    SaveProgress(tmp_path, every=1, color_source=content).on_iteration(_info(0, gray))
    saved = load_image(tmp_path / "progress" / "iter_0000001.png", min_side=None)
    assert saved.shape == (1, 3, 32, 40)
    assert color.rgb_to_yiq(saved)[:, 1:].abs().mean() > 0.02  # coloured, not gray
    assert (color.luminance(saved) - color.luminance(gray)).abs().mean() < 0.01  # the optimised luminance


def test_build_callbacks_adds_save_progress_only_when_asked(tmp_path: Path) -> None:
    assert not any(isinstance(cb, SaveProgress) for cb in build_callbacks({}, tmp_path, {}, 5, save_every=0))
    (saver,) = [cb for cb in build_callbacks({}, tmp_path, {}, 5, save_every=7) if isinstance(cb, SaveProgress)]
    assert saver.every == 7 and saver.folder == tmp_path / "progress"
