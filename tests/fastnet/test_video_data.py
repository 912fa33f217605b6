"""data=video (nst.fastnet.video_pairs, nst.fastnet.video_data): cached frames and flows, pairs, mixing, training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from nst.errors import NSTError
from nst.fastnet.motion import PAIR_KEYS
from nst.fastnet.video_data import VideoDataModule
from nst.fastnet.video_pairs import VideoPairs, video_sources
from nst.flow.opencv import DISFlow
from nst.io.video import open_writer
from tests.clips import moving_square_clip, square_box
from tests.conftest import TEST_OVERRIDES
from tests.fastnet.training import fit  # one thread for tiny tensors: tests/fastnet/conftest.py
from tests.helpers import compose_config, make_images

pytestmark = pytest.mark.filterwarnings(
    r"ignore:.*(does not have many workers|module\(s\) in eval mode|random weights|LeafSpec|is not empty).*"
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frame folder (5 frames) and an mp4 (4 frames) of a textured square moving 2 px per frame."""
    root = tmp_path_factory.mktemp("videos")
    for target, n in ((root / "clips" / "square", 5), (root / "square.mp4", 4)):
        with open_writer(target, fps=10, width=64, height=48) as writer:
            for frame in moving_square_clip(n, 48, 64, step=2):
                writer.write(frame)
    (root / "notes.txt").write_text("not a video")
    return root


def datamodule(root: Path, cache: Path, **kwargs) -> VideoDataModule:
    args = dict(root=str(root), image_size=32, batch_size=2, num_workers=0, num_val=2, cache_dir=str(cache))
    return VideoDataModule(**(args | kwargs), flow=DISFlow("ultrafast"))


def test_sources_are_video_files_and_frame_folders(videos: Path) -> None:
    assert video_sources(videos) == [videos / "clips" / "square", videos / "square.mp4"]
    assert video_sources(videos, skip=videos / "clips") == [videos / "square.mp4"]
    with pytest.raises(NSTError, match="no such folder"):
        video_sources(videos / "missing")


def test_pairs_come_with_cached_flows_and_a_second_epoch_computes_nothing(videos: Path, tmp_path: Path) -> None:
    dm = datamodule(videos, tmp_path / "cache")
    dm.setup("fit")
    assert dm.flows_computed == 2 * (4 + 3)  # backward and forward flow of every consecutive pair
    cached = sorted(tmp_path.glob("cache/*/flow/dis-ultrafast_*/*.npy"))
    assert len(cached) == 14 and {p.parent.name for p in cached} == {"dis-ultrafast_43x32"}
    train: VideoPairs = dm.train_set  # type: ignore[assignment]
    assert len(train) + len(dm.val_set) == 7 and len(dm.val_set) == 2
    for _epoch in range(2):
        batches = list(dm.train_dataloader())
        assert len(batches) == 2  # 5 training pairs at batch 2, last short batch dropped
    assert train.flows_computed == 0  # every flow read back from the cache
    batch = batches[0]
    assert set(batch) == set(PAIR_KEYS)
    assert batch["image"].shape == batch["previous"].shape == (2, 3, 32, 32)
    assert batch["flow"].shape == (2, 2, 32, 32) and batch["mask"].shape == (2, 1, 32, 32)
    assert 0 < float(batch["mask"].mean()) <= 1

    markers = {p: p.stat().st_mtime_ns for p in tmp_path.glob("cache/*/frames.json")}
    assert len(markers) == 2 and not list(tmp_path.glob("cache/.*"))  # no staging folder left behind
    again = datamodule(videos, tmp_path / "cache")  # a new run on the same cache: nothing decoded or computed
    again.setup("fit")
    assert again.flows_computed == 0
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("cache/*/frames.json")} == markers


def test_a_pair_is_one_crop_of_frames_flow_and_mask(videos: Path, tmp_path: Path) -> None:
    dm = datamodule(videos / "clips", tmp_path / "cache", num_val=0)
    dm.setup("fit")
    pairs = VideoPairs(dm.train_set.clips, dm.train_set.pairs, dm.flow, crop=32, train=False)
    c, t = pairs.pairs[2]
    item = pairs[2]
    clip = pairs.clips[c]
    flow_file = next(clip.folder.glob(f"flow/*/{t}_{t - 1}.npy"))
    full = torch.from_numpy(np.load(flow_file).astype(np.float32))
    left = (full.shape[-1] - 32) // 2
    torch.testing.assert_close(item["flow"], full[:, :, left : left + 32])
    torch.testing.assert_close(item["image"], clip.frame(t)[0][:, :, left : left + 32])
    torch.testing.assert_close(item["previous"], clip.frame(t - 1)[0][:, :, left : left + 32])
    # the moving square's motion is in the flow: its centre moves right by 2 px at 48 px, 4/3 px at 32 px
    top, left_sq, side = square_box(t, 48, 64, step=2)
    row, col = round((top + side / 2) * 2 / 3), round((left_sq + side / 2) * 2 / 3) - left  # its centre, in the crop
    assert float(item["flow"][0, row - 2 : row + 2, col - 2 : col + 2].mean()) == pytest.approx(-4 / 3, abs=0.3)
    assert float(item["flow"][:, :, -6:].abs().max()) < 0.3  # the static background
    assert dm.val_images().shape == (0, 3, 32, 32)


def test_stills_mix_in_with_a_zero_mask(videos: Path, tmp_path: Path) -> None:
    stills = make_images(tmp_path / "stills", n=6, size=(40, 40))
    dm = datamodule(videos, tmp_path / "cache", stills=str(stills), mix=0.5, batch_size=1)
    dm.setup("fit")
    items = list(dm.train_dataloader())
    assert len(items) == 10  # 5 training pairs are half of an epoch
    still = [b for b in items if torch.equal(b["image"], b["previous"])]
    assert 2 <= len(still) <= 8 and all(float(b["mask"].abs().sum()) == 0 for b in still)
    with pytest.raises(NSTError, match="data.stills"):
        datamodule(videos, tmp_path / "cache", mix=0.3)


def test_empty_root_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(NSTError, match="no videos under data.root"):
        datamodule(tmp_path / "empty", tmp_path / "cache").setup("fit")


def test_temporal_video_trains_on_video_pairs(videos: Path, tmp_path: Path) -> None:
    overrides = [o for o in TEST_OVERRIDES["train"] if o != "data=folder"]
    cfg = compose_config("train", [
        *overrides, "data=video", "temporal=video", f"data.root={videos}", f"data.cache_dir={tmp_path / 'cache'}",
        "data.flow.preset=ultrafast", "noise.pixels=0", "trainer.max_steps=2", f"paths.output_dir={tmp_path}",
    ])
    _, module, _, recorder = fit(cfg, config_callbacks=False, limit_val_batches=0)
    assert module.temporal_enabled and recorder.net_batches == [4, 4]  # current and previous frames, one forward
    assert all(math.isfinite(m["loss/temporal"]) and m["loss/temporal"] > 0 for m in recorder.metrics)
