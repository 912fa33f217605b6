"""What a video run keeps on disk, so that it can stop at any frame and resume: inputs, passes, the job.

Run folder layout:

* ``input/frame_000000.png ...``: the selected input frames at the working size, extracted lazily as the
  run (or the flow worker) first asks for them. Random access for flows, resume and metrics; uint8, so a
  resumed run sees exactly the content the first run saw.
* ``frames/``: the stylized frames of the last (forward) pass, one PNG per frame, each written atomically.
* ``passes/<k>_<forward|backward>/``: earlier passes of ``video.passes > 1``, named by processing step.
* ``video_job.json``: the settings that decide the frames, the content's size and a digest of its first frame;
  a rerun with other settings or other content is refused, and so is a folder holding frames but no job file.

Stylized frames are kept as the PNGs hold them (8 bits per channel) also in memory, so a resumed run and an
uninterrupted one compute the same temporal terms.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nst.errors import NSTError
from nst.gatys.temporal import pass_directions
from nst.io.files import atomic_path, file_digest
from nst.io.frames import FRAME_NAME, FrameFolderWriter, finished_frames
from nst.io.image import MIN_SIDE, fit_long_side, load_image
from nst.io.media import VideoReader

JOB_FILE = "video_job.json"


def working_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """(H, W) with the long side scaled to ``max_size`` (as for still images); both sides at least 32 px."""
    size = fit_long_side(height, width, max_size)
    if min(size) < MIN_SIDE:
        raise NSTError(
            f"the video is {width}x{height}, {size[1]}x{size[0]} at max_size={max_size}: both sides must be at "
            f"least {MIN_SIDE} px for VGG-19; use a larger max_size"
        )
    return size


def quantized(image: torch.Tensor) -> torch.Tensor:
    """The image as an 8-bit frame file stores it (clamped, rounded to 1/255)."""
    return image.clamp(0, 1).mul(255).round().div(255)


def read_frame(path: Path) -> torch.Tensor:
    """One stored frame as (1, 3, H, W) in [0, 1]."""
    return load_image(path, max_size=None, min_side=None)


class InputFrames:
    """The selected input frames at the working size, by index, stored once in ``<run>/input``.

    Frames are decoded in order from ``reader`` only as far as an index asks, so memory stays flat and a
    resume decodes nothing it already stored. Thread-safe: the flow worker and the loop both read frames.
    """

    def __init__(self, reader: VideoReader, folder: str | os.PathLike, size: tuple[int, int], overwrite: bool = False):
        if reader.frame_count is None:
            raise NSTError(f"{reader.path}: the number of frames is unknown; re-encode it as mp4")
        self.reader, self.folder, self.size, self.overwrite = reader, Path(folder), size, overwrite
        self.count = int(reader.frame_count)
        self._stored = min(len(finished_frames(self.folder)), self.count)
        self._frames: Iterator[torch.Tensor] | None = None
        self._writer: FrameFolderWriter | None = None
        self._lock = threading.Lock()

    def frame(self, index: int) -> torch.Tensor:
        """Input frame ``index`` (0-based among the selected frames), (1, 3, H, W) on the CPU."""
        if not 0 <= index < self.count:
            raise IndexError(f"frame {index} of a {self.count}-frame video")
        with self._lock:
            while self._stored <= index:
                self._store_next()
        return read_frame(self.folder / FRAME_NAME.format(index))

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self.frame(i) for i in range(self.count))

    def _store_next(self) -> None:
        if self._frames is None:  # skip what an earlier run stored; decoding restarts at the first frame
            self._frames = iter(self.reader)
            for _ in range(self._stored):
                next(self._frames)
            self._writer = FrameFolderWriter(self.folder, self._stored, width=self.size[1], height=self.size[0],
                                             overwrite=self.overwrite)
        frame = next(self._frames)
        if tuple(frame.shape[-2:]) != self.size:
            frame = F.interpolate(frame, size=self.size, mode="bilinear", antialias=True, align_corners=False)
        self._writer.write(frame.clamp(0, 1))
        self._stored += 1


class PassFolders:
    """The stylized frames of each pass on disk: where they live, which are finished, where to resume."""

    def __init__(self, run_dir: str | os.PathLike, frames: int, passes: int = 1, overwrite: bool = False):
        self.run_dir, self.frames, self.passes = Path(run_dir), int(frames), int(passes)
        self.overwrite = overwrite
        self.directions = pass_directions(self.passes)

    def folder(self, k: int) -> Path:
        """``frames/`` for the last pass, ``passes/<k>_<direction>/`` for the others."""
        if k == self.passes - 1:
            return self.run_dir / "frames"
        return self.run_dir / "passes" / f"{k}_{'forward' if self.directions[k] > 0 else 'backward'}"

    def frame_at(self, k: int, step: int) -> int:
        """The frame index processed at ``step`` of pass ``k``."""
        return step if self.directions[k] > 0 else self.frames - 1 - step

    def finished(self, k: int) -> int:
        """How many steps of pass ``k`` are finished on disk."""
        return min(len(finished_frames(self.folder(k))), self.frames)

    def resume_point(self) -> tuple[int, int]:
        """(pass, step) of the first unfinished frame; ``(passes, 0)`` when everything is finished."""
        for k in range(self.passes):
            done = self.finished(k)
            if done < self.frames:
                return k, done
        return self.passes, 0

    def load(self, k: int, frame: int) -> torch.Tensor:
        """Stylized ``frame`` of pass ``k`` as stored, (1, 3, H, W) on the CPU."""
        step = frame if self.directions[k] > 0 else self.frames - 1 - frame
        return read_frame(self.folder(k) / FRAME_NAME.format(step))

    def writer(self, k: int, start_step: int, fps: float, size: tuple[int, int]) -> FrameFolderWriter:
        """A writer of pass ``k`` from ``start_step`` on (it removes stale frames from there on)."""
        return FrameFolderWriter(self.folder(k), start_step, fps=fps, width=size[1], height=size[0],
                                 overwrite=self.overwrite)

    def output_frames(self) -> Iterator[torch.Tensor]:
        """The final frames in order, read one at a time."""
        return (self.load(self.passes - 1, t) for t in range(self.frames))


def content_identity(reader: VideoReader) -> dict[str, Any]:
    """What tells one content from another: its size (width, height, and bytes for a file) and a digest of its
    first selected frame's pixels. A job keyed on these is not resumed on a re-encoded or replaced video."""
    first = next(iter(reader.arrays()), None)
    digest = hashlib.sha256(first.tobytes()).hexdigest() if first is not None else None
    path = Path(reader.path)
    return {"content_size": [reader.width, reader.height],
            "content_bytes": path.stat().st_size if path.is_file() else None, "content_digest": digest}


def style_digests(paths: list[Path]) -> list[str]:
    """A digest of each style image file, so that a job is not resumed after a style image changed."""
    try:
        return [file_digest(p) for p in paths]
    except OSError as exc:
        raise NSTError(f"cannot read style image: {exc}; check style.image") from exc


def check_job(run_dir: str | os.PathLike, job: Mapping[str, Any], kept: tuple[str, ...] = ("input", "frames", "passes"),
              name: str = JOB_FILE) -> bool:
    """Record ``job`` in the run folder, or compare it with the one recorded; True when resuming.

    A run folder holding results of other settings is refused with one line, instead of mixing two jobs; so is
    one holding results (any of ``kept``, its files or folders) but no job file, whose settings are unknown.
    """
    path = Path(run_dir) / name
    job = json.loads(json.dumps(dict(job)))  # plain JSON types, as read back
    if path.is_file():
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError):
            recorded = None
        if recorded is not None and recorded != job:
            keys = sorted(k for k in set(job) | set(recorded) if job.get(k) != recorded.get(k))
            raise NSTError(
                f"{path.parent} holds results made with other settings ({', '.join(keys)} differ); "
                "use another hydra.run.dir, or delete that folder to start again"
            )
        if recorded is not None:
            return True
    elif any(_holds_files(Path(run_dir) / k) for k in kept):
        raise NSTError(f"{path.parent} holds results but no {name} telling how they were made; use another "
                       "hydra.run.dir, or delete that folder to start again")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(job, indent=2, sort_keys=True) + "\n")
    return False


def _holds_files(path: Path) -> bool:
    """A file, or a folder with a file somewhere inside."""
    return path.is_file() or (path.is_dir() and any(p.is_file() for p in path.rglob("*")))
