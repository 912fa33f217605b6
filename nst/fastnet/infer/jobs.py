"""``infer.py``'s job: images, videos, GIFs, frame folders and folders of all of these, through one engine.

:func:`plan_jobs` decides what goes where (names kept), :func:`run_jobs` runs them with one progress bar over
all frames and returns a :class:`Summary` (frames, seconds, frames/s). Video outputs keep the input's fps,
size (odd sizes too) and audio; every output is written atomically.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nst.errors import NSTError
from nst.fastnet.infer.engines import FrameEngine
from nst.fastnet.infer.pipeline import stylize_video
from nst.io.files import refuse_overwriting
from nst.io.image import IMAGE_SUFFIXES, fit_long_side, open_rgb, resize_long_side, save_image
from nst.io.media import array_to_tensor
from nst.io.video import VIDEO_SUFFIXES, open_video, open_writer

#: Video outputs the writers make; other video inputs (.avi) come out as .mp4 in folder mode.
WRITABLE_VIDEO = (".mp4", ".mov", ".mkv", ".m4v", ".webm", ".gif")


@dataclass(frozen=True)
class Job:
    """One input and where its result goes; ``video`` for video files, GIFs and frame folders."""

    source: Path
    target: Path
    video: bool


@dataclass
class InferSettings:
    """The knobs of a run: frames per batch, downscale, extra outputs, encoder quality, audio."""

    batch_size: int = 4
    max_size: int | None = None
    side_by_side: bool = False
    crf: int = 18
    audio: bool = True


@dataclass
class Summary:
    """What a run did: outputs written, frames stylized, wall-clock seconds."""

    outputs: list[Path] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def _video_target(source: Path, output: Path) -> Path:
    """Where a video goes: ``output`` itself if it names a video file, else ``output/<same name>``."""
    if output.suffix.lower() in WRITABLE_VIDEO:
        return output
    if output.suffix.lower() in IMAGE_SUFFIXES:
        raise NSTError(f"output {output} is an image name but input {source} is a video; use .mp4, .gif or a folder")
    name = source.name if source.suffix.lower() in WRITABLE_VIDEO else source.with_suffix(".mp4").name
    return output / name


def plan_jobs(source: str | os.PathLike, output: str | os.PathLike) -> list[Job]:
    """The (input, output) pairs of a run.

    An image or video file goes to ``output`` if that names a file of its kind, else into the folder ``output``
    under its own name. A folder goes file by file (images and videos, recursively, names kept) into the folder
    ``output``, unless ``output`` names a video file: then the folder is read as one video of frames. An output
    that is its input, or a folder of outputs inside the input folder, is refused.
    """
    jobs = _plan(Path(source), Path(output))
    if Path(source).is_dir() and Path(output).suffix.lower() not in WRITABLE_VIDEO:
        refuse_overwriting(output, [source], folder=True)
    for job in jobs:
        refuse_overwriting(job.target, [job.source])
    return jobs


def _plan(source: Path, output: Path) -> list[Job]:
    if source.is_dir():
        if output.suffix.lower() in WRITABLE_VIDEO:
            return [Job(source, output, True)]
        files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in (*IMAGE_SUFFIXES, *VIDEO_SUFFIXES))
        if not files:
            raise NSTError(f"no images or videos in folder {source}; give an image, a video or a folder of them")
        return [
            Job(p, _video_target(p, (output / p.relative_to(source)).parent), True) if p.suffix.lower()
            in VIDEO_SUFFIXES else Job(p, output / p.relative_to(source), False) for p in files
        ]
    if not source.is_file():
        raise NSTError(f"input not found: {source}")
    suffix = source.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return [Job(source, _video_target(source, output), True)]
    if suffix in IMAGE_SUFFIXES:
        if output.suffix.lower() in WRITABLE_VIDEO:
            raise NSTError(f"input {source} is an image but output {output} is a video name; use an image name")
        return [Job(source, output if output.suffix.lower() in IMAGE_SUFFIXES else output / source.name, False)]
    raise NSTError(f"input {source} is neither an image ({' '.join(IMAGE_SUFFIXES)}) nor a video "
                   f"({' '.join(VIDEO_SUFFIXES)}); give one of those or a folder")


def side_by_side_path(target: Path) -> Path:
    """``out.mp4`` -> ``out_side_by_side.mp4`` (a frame folder ``out`` -> ``out_side_by_side``)."""
    return target.with_name(f"{target.stem}_side_by_side{target.suffix}")


def count_frames(jobs: list[Job]) -> int | None:
    """Frames of all jobs (images count 1); None if a video cannot tell."""
    total = 0
    for job in jobs:
        if job.video:
            with open_video(job.source) as reader:
                if reader.frame_count is None:
                    return None
                total += reader.frame_count
        else:
            total += 1
    return total


def check_output(target: Path) -> None:
    """Refuse, before any work, an output whose folder cannot be created or written."""
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise NSTError(f"cannot write {target}: {parent} is not a writable folder; choose another output")


def _stylize_image(engine: FrameEngine, job: Job, settings: InferSettings) -> int:
    array = np.array(resize_long_side(open_rgb(job.source), settings.max_size))
    save_image(array_to_tensor(engine(array[None])[0]), job.target)
    return 1


def _stylize_one_video(engine: FrameEngine, job: Job, settings: InferSettings, bar: Callable[[int], None]) -> int:
    with open_video(job.source) as reader:
        height, width = fit_long_side(reader.height, reader.width, settings.max_size, upscale=False)
        kwargs = {"audio_from": reader, "audio": settings.audio, "crf": settings.crf}
        with open_writer(job.target, reader.fps, width, height, **kwargs) as writer:
            if not settings.side_by_side:
                return stylize_video(engine, reader, writer, settings.batch_size, (width, height),
                                     on_batch=bar)
            side = side_by_side_path(job.target)
            with open_writer(side, reader.fps, 2 * width, height, **kwargs) as pair:
                return stylize_video(engine, reader, writer, settings.batch_size, (width, height), pair,
                                     on_batch=bar)


def run_jobs(engine: FrameEngine, jobs: list[Job], settings: InferSettings, total: int | None = None,
             on_frames: Callable[[int], None] | None = None) -> Summary:
    """Run ``jobs`` in order with one progress bar (frames, frames/s); returns what was done.

    ``on_frames(n)`` is called after every ``n`` frames stylized (the web page's progress); an exception it
    raises stops the run, and the output being written is not left behind."""
    for job in jobs:
        check_output(job.target)
        if job.video and settings.side_by_side:
            refuse_overwriting(side_by_side_path(job.target), [j.source for j in jobs])
    summary = Summary()
    start = time.perf_counter()
    with tqdm(total=total, unit="frame", desc="stylizing", dynamic_ncols=True, disable=total == 1) as bar:

        def done(n: int) -> None:
            bar.update(n)
            if on_frames is not None:
                on_frames(n)

        for job in jobs:
            if job.video:
                summary.frames += _stylize_one_video(engine, job, settings, done)
            else:
                summary.frames += _stylize_image(engine, job, settings)
                done(1)
            summary.outputs.append(job.target)
            if job.video and settings.side_by_side:
                summary.outputs.append(side_by_side_path(job.target))
    summary.seconds = time.perf_counter() - start
    return summary
