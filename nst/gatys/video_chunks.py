"""A long video as overlapping chunks, each optimised on its own (by another worker), then stitched.

Chunk k covers the selected frames ``[start_k, stop_k)``; it shares its last ``overlap`` frames with the first
frames of chunk k+1. Every chunk is a full video run (any method, flows and passes included) in its own run
folder, so it resumes at its finished frames like any video run (:mod:`nst.gatys.video_store`).

The stitch fades from one chunk to the next across the shared frames, with weights that ramp linearly:
frame ``start_{k+1} + i`` of the overlap is ``(1 - w) A + w B`` with ``w = (i + 1) / (overlap + 1)``, where A and
B are chunks k and k+1's stylizations of that same input frame. The two are pixel-aligned (same input frame), so
the fade needs no warp; it spreads the difference between the chunks over ``overlap + 1`` frame steps instead
of one cut, as Ruder et al. 2016's multi-pass blend spreads a neighbour's result over the next pass. The seams
are then measured with E_warp (:func:`seam_summary`): the frame steps touching a fade against all others.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from nst.errors import NSTError
from nst.gatys.video_store import JOB_FILE, PassFolders, quantized, read_frame
from nst.io.frames import FRAME_NAME, FrameFolderWriter, finished_frames

Span = tuple[int, int]


def plan_chunks(frames: int, chunks: int, overlap: int) -> list[Span]:
    """``chunks`` spans ``(start, stop)`` covering ``frames`` frames, each sharing ``overlap`` frames with the next.

    Chunks are as equal as rounding allows. A frame is shared by at most two chunks: each chunk's own part is at
    least ``overlap`` frames (and at least one), so ``frames >= overlap + chunks * max(overlap, 1)``.
    """
    if int(chunks) < 1 or int(overlap) < 0:
        raise NSTError(f"video.chunks={chunks}, video.overlap={overlap}: use chunks >= 1 and overlap >= 0")
    needed = overlap + chunks * max(overlap, 1)
    if frames < needed:
        raise NSTError(f"video.chunks={chunks} with video.overlap={overlap} needs at least {needed} frames, the "
                       f"selection has {frames}; use fewer chunks or a smaller overlap")
    step = (frames - overlap) / chunks
    return [(round(k * step), round((k + 1) * step) + overlap) for k in range(chunks)]


def blend_weights(spans: Sequence[Span], t: int) -> list[tuple[int, float]]:
    """``(chunk, weight)`` of frame ``t`` in the stitch: one chunk with weight 1, or two across a fade."""
    inside = [k for k, (a, b) in enumerate(spans) if a <= t < b]
    if len(inside) == 1:
        return [(inside[0], 1.0)]
    first, second = inside  # plan_chunks: at most two
    overlap = spans[first][1] - spans[second][0]
    w = (t - spans[second][0] + 1) / (overlap + 1)
    return [(first, 1.0 - w), (second, w)]


@dataclass(frozen=True)
class Chunk:
    """One chunk: frames ``[start, stop)`` of the selection, optimised in its own run folder."""

    index: int
    start: int
    stop: int
    folder: Path

    @property
    def frames(self) -> int:
        return self.stop - self.start

    def progress(self, passes: int) -> int:
        """Frame steps finished, over all passes (``frames * passes`` when done)."""
        store = PassFolders(self.folder, self.frames, passes)
        return sum(store.finished(k) for k in range(passes))

    def done(self, passes: int) -> bool:
        """Whether every frame of every pass is on disk (and the job that made them is recorded)."""
        return (self.folder / JOB_FILE).is_file() and self.progress(passes) == self.frames * passes

    def frame(self, t: int) -> torch.Tensor:
        """The final stylized frame ``t`` (index in the whole selection), (1, 3, H, W) on the CPU."""
        return read_frame(self.folder / "frames" / FRAME_NAME.format(t - self.start))


def stitch_frames(chunks: Sequence[Chunk], folder: Path, fps: float, overwrite: bool = False) -> bool:
    """Write the stitched frames ``frame_000000.png ...`` into ``folder``; False when they are there already and
    newer than every chunk frame (a rerun with nothing new to stitch)."""
    spans = [(c.start, c.stop) for c in chunks]
    total = chunks[-1].stop
    stitched = finished_frames(folder)
    if len(stitched) >= total:
        newest_chunk = max(os.path.getmtime(p) for c in chunks for p in finished_frames(c.folder / "frames"))
        if min(os.path.getmtime(p) for p in stitched) >= newest_chunk:
            return False
    first = chunks[0].frame(0)
    with FrameFolderWriter(folder, 0, fps=fps, width=first.shape[-1], height=first.shape[-2],
                           overwrite=overwrite) as writer:
        for t in range(total):
            frame = sum(w * chunks[k].frame(t) for k, w in blend_weights(spans, t))
            writer.write(quantized(frame))
    return True


def seam_steps(spans: Sequence[Span]) -> list[int]:
    """Indices j of the frame steps (frame j -> j+1) that touch a fade: from the last frame of chunk k alone to
    the first frame of chunk k+1 alone (``overlap + 1`` steps per seam; one, a cut, without overlap)."""
    steps = []
    for (_, stop), (start, _) in zip(spans, spans[1:]):
        steps += range(start - 1, stop)
    return steps


def seam_summary(per_frame: Sequence[float], spans: Sequence[Span]) -> dict[str, float]:
    """E_warp at the seams against inside the chunks, from per-step E_warp (index j: frame j -> j+1).

    ``seam_warp_error``: the mean of the steps touching a fade; ``seam_warp_error_max``: the worst of them;
    ``seam_inside_warp_error``: the mean of all other steps; ``seam_ratio``: seam mean / inside mean. The ratio
    takes the mean because a single step also peaks where the clip itself does (a fast motion), seams or not.
    """
    seams = set(seam_steps(spans))
    at = [e for j, e in enumerate(per_frame) if j in seams and not math.isnan(e)]
    inside = [e for j, e in enumerate(per_frame) if j not in seams and not math.isnan(e)]
    seam_mean = sum(at) / len(at) if at else math.nan
    inside_mean = sum(inside) / len(inside) if inside else math.nan
    return {
        "seam_warp_error": seam_mean,
        "seam_warp_error_max": max(at) if at else math.nan,
        "seam_inside_warp_error": inside_mean,
        "seam_ratio": seam_mean / inside_mean if inside_mean > 0 else math.nan,
    }
