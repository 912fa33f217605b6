"""Videos and folders through a network (nst.fastnet.infer.pipeline and jobs): frame count, size (odd too),
fps and audio kept; batches give the frames of one-at-a-time; names kept; a failing stage leaves no output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst.errors import NSTError
from nst.fastnet.infer.engines import TorchEngine
from nst.fastnet.infer.jobs import InferSettings, plan_jobs, run_jobs
from nst.fastnet.infer.pipeline import stylize_video
from nst.fastnet.transformer_net import TransformerNet
from nst.io.frames import list_images
from nst.io.image import load_image
from nst.io.media import VideoReader
from nst.io.video import open_video, open_writer
from tests.io.helpers import audio_seconds, frame_image, leftovers, write_clip


@pytest.fixture(scope="module")
def engine() -> TorchEngine:
    torch.manual_seed(0)
    return TorchEngine(TransformerNet(base_channels=4, num_residual=1), torch.device("cpu"), "fp32")


def _odd_clip(path: Path, frames: int = 5, size: tuple[int, int] = (37, 23)) -> Path:
    with open_writer(path, 10.0, *size) as writer:
        for i in range(frames):
            writer.write(frame_image(i, *size))
    return path


def test_mp4_keeps_frames_size_fps_and_audio(tmp_path: Path, engine: TorchEngine) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=12, size=(64, 48), fps=12)
    [job] = plan_jobs(clip, tmp_path / "out")
    assert job.target == tmp_path / "out" / "clip.mp4"
    summary = run_jobs(engine, [job], InferSettings(batch_size=5, side_by_side=True))
    assert summary.frames == 12 and summary.outputs == [job.target, tmp_path / "out" / "clip_side_by_side.mp4"]
    with open_video(job.target) as out, open_video(summary.outputs[1]) as pair:
        assert (out.frame_count, out.width, out.height, out.fps, out.has_audio) == (12, 64, 48, 12.0, True)
        assert (pair.width, pair.height, pair.frame_count) == (128, 48, 12)
        first = next(pair.arrays())
    assert abs(audio_seconds(job.target) - 1.0) < 0.05
    assert np.abs(first[:, :64].astype(int) - frame_image(0)).mean() < 4  # the left half is the input


def test_odd_size_and_batches_give_the_same_pixels(tmp_path: Path, engine: TorchEngine) -> None:
    clip = _odd_clip(tmp_path / "odd.mp4", frames=5)
    outputs = {}
    for batch in (1, 3):
        with open_video(clip) as reader, open_writer(tmp_path / f"b{batch}", reader.fps, 37, 23) as writer:
            assert stylize_video(engine, reader, writer, batch_size=batch) == 5
        outputs[batch] = [np.asarray(Image.open(p)).astype(int) for p in list_images(tmp_path / f"b{batch}")]
    assert len(outputs[1]) == len(outputs[3]) == 5 and outputs[1][0].shape == (23, 37, 3)
    assert max(np.abs(a - b).max() for a, b in zip(outputs[1], outputs[3], strict=True)) <= 1
    with open_writer(tmp_path / "odd_out.mp4", 10.0, 37, 23) as writer, open_video(clip) as reader:
        stylize_video(engine, reader, writer, batch_size=2)
    with open_video(tmp_path / "odd_out.mp4") as out:
        assert (out.width, out.height, out.frame_count, out.fps) == (37, 23, 5, 10.0)


class _Broken(VideoReader):
    """Three good frames, then a decode error."""

    path, fps, frame_count, width, height = Path("broken.mp4"), 10.0, 6, 32, 24

    def arrays(self):
        for i in range(3):
            yield frame_image(i, 32, 24)
        raise NSTError("frame 4 of broken.mp4 failed to decode")


def test_a_failing_stage_leaves_no_output(tmp_path: Path, engine: TorchEngine) -> None:
    with pytest.raises(NSTError, match="failed to decode"):
        with open_writer(tmp_path / "out.mp4", 10.0, 32, 24) as writer:
            stylize_video(engine, _Broken(), writer, batch_size=2)
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []

    def failing(frames):
        raise RuntimeError("out of memory")

    clip = _odd_clip(tmp_path / "clip.mp4", frames=3, size=(32, 24))
    with pytest.raises(RuntimeError, match="out of memory"):
        with open_video(clip) as reader, open_writer(tmp_path / "out2.mp4", 10.0, 32, 24) as writer:
            stylize_video(failing, reader, writer)
    assert not (tmp_path / "out2.mp4").exists()


def test_folder_keeps_names_grayscale_rgba_and_videos(tmp_path: Path, engine: TorchEngine) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.new("L", (33, 21), 90).save(src / "gray.png")
    Image.new("RGBA", (20, 30), (200, 10, 10, 128)).save(src / "sub" / "rgba.png")
    _odd_clip(src / "sub" / "clip.mp4", frames=3, size=(32, 24))
    (src / "notes.txt").write_text("skipped")
    jobs = plan_jobs(src, tmp_path / "out")
    summary = run_jobs(engine, jobs, InferSettings(batch_size=2, max_size=24))
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in summary.outputs)
    assert names == ["gray.png", "sub/clip.mp4", "sub/rgba.png"] and summary.frames == 5
    assert load_image(tmp_path / "out" / "gray.png", min_side=None).shape == (1, 3, 15, 24)
    assert load_image(tmp_path / "out" / "sub" / "rgba.png", min_side=None).shape == (1, 3, 24, 16)
    with open_video(tmp_path / "out" / "sub" / "clip.mp4") as out:
        assert (out.width, out.height, out.frame_count) == (24, 18, 3)


def test_bad_inputs_and_outputs_are_one_line_errors(tmp_path: Path, engine: TorchEngine) -> None:
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 200)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    cases = [
        (lambda: plan_jobs(tmp_path / "missing.mp4", tmp_path / "o"), "input not found"),
        (lambda: plan_jobs(tmp_path / "blocker", tmp_path / "o"), "neither an image"),
        (lambda: run_jobs(engine, plan_jobs(tmp_path / "broken.mp4", tmp_path / "o.mp4"), InferSettings()),
         "cannot read video"),
        (lambda: run_jobs(engine, plan_jobs(_odd_clip(tmp_path / "c.mp4", 2, (16, 16)), tmp_path / "blocker" / "o.mp4"),
                          InferSettings()), "not a writable folder"),
    ]
    for call, words in cases:
        with pytest.raises(NSTError) as info:
            call()
        assert words in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "o.mp4").exists() and leftovers(tmp_path) == []
