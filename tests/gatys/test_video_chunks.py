"""Long videos in chunks (nst.gatys.video_chunks): the plan, the linear fade and the seams' E_warp."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nst.errors import NSTError
from nst.gatys.video_chunks import Chunk, blend_weights, plan_chunks, seam_steps, seam_summary, stitch_frames
from nst.io.frames import FrameFolderWriter, finished_frames
from nst.io.image import load_image


@pytest.mark.parametrize(("frames", "chunks", "overlap"), [(10, 2, 3), (100, 8, 8), (7500, 8, 8), (5, 5, 0)])
def test_chunks_cover_every_frame_and_share_exactly_the_overlap(frames: int, chunks: int, overlap: int) -> None:
    spans = plan_chunks(frames, chunks, overlap)
    assert len(spans) == chunks and spans[0][0] == 0 and spans[-1][1] == frames
    assert all(b - a == overlap for (_, b), (a, _) in zip(spans, spans[1:]))
    covered = [sum(a <= t < b for a, b in spans) for t in range(frames)]
    assert set(covered) <= {1, 2} and covered.count(2) == overlap * (chunks - 1)
    lengths = [b - a for a, b in spans]
    assert max(lengths) - min(lengths) <= 1  # as equal as rounding allows


def test_too_many_chunks_for_the_frames_is_one_line() -> None:
    with pytest.raises(NSTError, match=r"video.chunks=8 with video.overlap=8 needs at least 72 frames, the "
                                       r"selection has 40; use fewer chunks") as info:
        plan_chunks(40, 8, 8)
    assert "\n" not in str(info.value)
    with pytest.raises(NSTError, match="chunks >= 1 and overlap >= 0"):
        plan_chunks(40, 2, -1)


def test_the_fade_ramps_linearly_from_one_chunk_to_the_next() -> None:
    spans = [(0, 7), (3, 10)]  # frames 3..6 shared
    assert blend_weights(spans, 2) == [(0, 1.0)] and blend_weights(spans, 7) == [(1, 1.0)]
    fade = [dict(blend_weights(spans, t))[1] for t in range(3, 7)]
    assert fade == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert all(sum(w for _, w in blend_weights(spans, t)) == pytest.approx(1.0) for t in range(10))


def test_seam_steps_run_from_the_last_frame_of_one_chunk_alone_to_the_first_of_the_next() -> None:
    assert seam_steps([(0, 7), (3, 10)]) == [2, 3, 4, 5, 6]  # 2->3 ... 6->7: overlap + 1 steps
    assert seam_steps([(0, 5), (5, 10)]) == [4]  # no overlap: one cut
    per_step = [1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 1.0, 1.0]  # step j: frame j -> j+1
    summary = seam_summary(per_step, [(0, 7), (3, 10)])
    assert summary["seam_warp_error_max"] == 3.0 and summary["seam_warp_error"] == pytest.approx(2.2)
    assert summary["seam_inside_warp_error"] == 1.0 and summary["seam_ratio"] == pytest.approx(2.2)
    assert math.isnan(seam_summary([math.nan] * 9, [(0, 7), (3, 10)])["seam_ratio"])


def _chunk(folder: Path, index: int, start: int, stop: int, value: float) -> Chunk:
    with FrameFolderWriter(folder / "frames") as writer:
        for _ in range(stop - start):
            writer.write(torch.full((1, 3, 32, 32), value))
    return Chunk(index, start, stop, folder)


def test_stitch_fades_the_shared_frames_and_a_rerun_with_nothing_new_writes_nothing(tmp_path: Path) -> None:
    chunks = [_chunk(tmp_path / "a", 0, 0, 6, 0.0), _chunk(tmp_path / "b", 1, 3, 8, 1.0)]  # frames 3..5 shared
    out = tmp_path / "frames"
    assert stitch_frames(chunks, out, fps=12)
    frames = finished_frames(out)
    assert len(frames) == 8
    means = [float(load_image(p, max_size=None, min_side=None).mean()) for p in frames]
    assert means == pytest.approx([0, 0, 0, 0.25, 0.5, 0.75, 1, 1], abs=1 / 255)
    stamps = [p.stat().st_mtime_ns for p in frames]
    assert not stitch_frames(chunks, out, fps=12)  # up to date: nothing written
    assert [p.stat().st_mtime_ns for p in finished_frames(out)] == stamps
    _chunk(tmp_path / "b", 1, 3, 8, 0.5)  # chunk 1 redone: the stitch is redone too
    assert stitch_frames(chunks, out, fps=12)
    assert float(load_image(finished_frames(out)[-1], max_size=None, min_side=None).mean()) == pytest.approx(
        0.5, abs=1 / 255)
