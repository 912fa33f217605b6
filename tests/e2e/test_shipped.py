"""The networks in weights/: `python infer.py` with no arguments paints the bundled clip, offline, out of the box."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import torch

from nst.fastnet.weights import load_weights, read_meta
from nst.io.video import open_video

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "weights" / "six_styles.pt"
STYLES = ["udnie", "starry_night", "great_wave", "composition_vii", "impression_sunrise", "raft_of_the_medusa"]


def test_the_shipped_file_is_small_half_precision_and_says_how_it_was_made() -> None:
    files = list((ROOT / "weights").glob("*.pt"))
    assert SHIPPED in files and sum(f.stat().st_size for f in files) <= 20e6
    assert all(f.stat().st_size <= 8e6 for f in files)
    data = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    assert {v.dtype for v in data["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    meta = read_meta(SHIPPED)
    assert meta["styles"] == STYLES and meta["encoder"] == "vgg16:hed" and meta["data"] == "photos"
    assert meta["steps"] > 0 and "train.py experiment=ship_six_styles" in meta["command"]
    net = load_weights(SHIPPED)
    assert net.styles == STYLES and next(net.parameters()).dtype == torch.float32


def test_infer_with_no_arguments_paints_the_bundled_clip(tmp_path: Path, python: str) -> None:
    run = subprocess.run([python, str(ROOT / "infer.py"), f"hydra.run.dir={tmp_path / 'run'}"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "run" / "stylized" / "sintel_mountain_2.mp4"
    assert f"wrote {out}" in run.stdout
    clip = ROOT / "assets" / "video" / "sintel_mountain_2.mp4"
    with open_video(out) as painted, open_video(clip) as source:
        assert (painted.frame_count, painted.width, painted.height) == (30, 512, 218)
        assert painted.fps == source.fps
        first, original = next(painted.arrays()), next(source.arrays())
    # painted, not copied: Udnie's palette moves the picture far from the input
    assert np.abs(first.astype(float) - original.astype(float)).mean() > 20
