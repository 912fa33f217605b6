"""Video files and animated GIFs through PyAV (FFmpeg), and the one entry point for every kind of video.

:func:`open_video` reads a file (mp4 mov mkv avi webm m4v gif) or a folder of frames behind one
:class:`VideoReader` interface; :func:`open_writer` picks the output format by the output path. Frames are
decoded lazily, one at a time, so memory stays flat however long the video is; ``start`` seeks instead of
decoding the skipped part where the container allows it; rotation metadata of phone videos is applied, so
frames come out upright.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from nst.errors import NSTError
from nst.io.encode import DEFAULT_PRESET, FileVideoWriter, GifWriter
from nst.io.frames import FOLDER_FPS, FrameFolderReader, FrameFolderWriter, finished_frames, has_images
from nst.io.image import IMAGE_SUFFIXES
from nst.io.media import VideoReader, VideoWriter

__all__ = [
    "DEFAULT_PRESET", "VIDEO_SUFFIXES", "FileVideoReader", "FrameFolderReader", "FrameFolderWriter",
    "VideoReader", "VideoWriter", "finished_frames", "is_video", "open_video", "open_writer",
]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".gif")
_H264_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v")


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video: a video file suffix (existing or not), or a folder holding images."""
    path = Path(path)
    return path.suffix.lower() in VIDEO_SUFFIXES or has_images(path)


def open_video(
    path: str | os.PathLike, start: int = 0, max_frames: int | None = None, every: int = 1, *,
    folder_fps: float = FOLDER_FPS,
) -> VideoReader:
    """Open a video file, GIF or frame folder, selecting frames ``start, start+every, ...`` (at most ``max_frames``).

    ``folder_fps`` is the frame rate assumed for a frame folder, which has none of its own.
    """
    if start < 0 or every < 1 or (max_frames is not None and max_frames < 1):
        raise NSTError(
            f"bad frame selection start={start} every={every} max_frames={max_frames}: "
            "use start >= 0, every >= 1 and max_frames >= 1 (or null for all)"
        )
    path = Path(path)
    if path.is_dir():
        return FrameFolderReader(path, start, max_frames, every, fps=folder_fps)
    if not path.is_file():
        raise NSTError(f"video not found: {path}")
    return FileVideoReader(path, start, max_frames, every)


def open_writer(
    path: str | os.PathLike, fps: float, width: int, height: int, *, audio_from: VideoReader | None = None,
    audio: bool = True, crf: int = 18, preset: str = DEFAULT_PRESET, overwrite: bool = False,
) -> VideoWriter:
    """A writer chosen by the output path; use it as a context manager (the output appears complete or not at all).

    ``.mp4 .mov .mkv .m4v``: H.264 (libx264, ``crf``, ``preset``); ``.webm``: VP9 (``crf``); ``.gif``: GIF at
    ``fps``; any other path: a folder of ``frame_000000.png, ...``. With ``audio_from`` (and ``audio=True``) the
    audio of that reader's source, cut to the written frames, goes into video files (not into GIFs or folders).
    A folder is refused when it holds files the frame writer did not make, unless ``overwrite``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if fps <= 0 or width < 1 or height < 1:
        raise NSTError(f"cannot write {path} at fps={fps}, size {width}x{height}: all must be positive")
    if suffix in _H264_SUFFIXES or suffix == ".webm":
        source = audio_from if audio and audio_from is not None and audio_from.has_audio else None
        return FileVideoWriter(path, fps, width, height, audio_from=source, crf=crf, preset=preset)
    if suffix == ".gif":
        if fps > 50:
            raise NSTError(f"cannot write {path} at {fps:g} fps: GIF delays are whole centiseconds, at least 2; "
                           "use every=2 or more, or a video format")
        return GifWriter(path, fps, width, height)
    if suffix in VIDEO_SUFFIXES or suffix in IMAGE_SUFFIXES:
        raise NSTError(
            f"cannot write {path}: use .mp4, .mov, .mkv, .webm or .gif, or a folder name for numbered PNG frames"
        )
    return FrameFolderWriter(path, fps=fps, width=width, height=height, overwrite=overwrite)


def _av_error(path: Path, exc: Exception) -> NSTError:
    """One line for a file FFmpeg cannot read: what is wrong in words, the path once (PyAV's own text repeats it
    after an ``[Errno N]`` code that means nothing to a user)."""
    if path.is_file() and path.stat().st_size == 0:
        why = "the file is empty"
    else:
        reason = str(getattr(exc, "strerror", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
        why = f"not a video ({reason[:1].lower()}{reason[1:]})"
    return NSTError(f"cannot read video {path}: {why}; is it a video file (mp4 mov mkv avi webm gif)?")


class FileVideoReader(VideoReader):
    """A video file or animated GIF, decoded with PyAV's frame threading (``thread_type = "AUTO"``).

    The display rotation of the first frame (phone videos: 90/180/270 degrees) is applied to every frame;
    mirroring in the display matrix is not. The file opened to probe it stays open for the first iteration
    (which then decodes no frame twice); later iterations open it again.
    """

    def __init__(self, path: Path, start: int = 0, max_frames: int | None = None, every: int = 1) -> None:
        self.path, self._start, self._every = path, start, every
        self._kept: tuple[av.container.InputContainer, list[av.VideoFrame]] | None = None
        container = self._open()
        try:
            if not container.streams.video:
                raise NSTError(f"{path} has no video stream; give a video file")
            self.has_audio = bool(container.streams.audio)
            first, replay, total, src_fps = self._probe(container, container.streams.video[0])
            if first is None or total == 0:
                raise NSTError(f"video {path} has no frames; give a video with at least one frame")
            if start >= total:
                raise NSTError(f"start={start} is past the last frame of {path} ({total} frames); lower start")
        except BaseException as exc:
            container.close()
            if isinstance(exc, av.FFmpegError):
                raise _av_error(path, exc) from exc
            raise
        if self._is_gif:  # GIFs do not seek: the next iteration opens the file again
            container.close()
        else:
            self._kept = (container, replay)
        self._src_fps = src_fps
        self._t0 = float(first.time or 0.0)
        self._rotation = first.rotation % 360 if first.rotation % 90 == 0 else 0
        turned = self._rotation in (90, 270)
        self.width, self.height = (first.height, first.width) if turned else (first.width, first.height)
        self.fps = src_fps / every
        self.start_time = self._t0 + start / src_fps
        selected = -(-(total - start) // every)
        self.frame_count = selected if max_frames is None else min(selected, max_frames)

    def _probe(
        self, container: av.container.InputContainer, stream: av.VideoStream
    ) -> tuple[av.VideoFrame | None, list[av.VideoFrame], int, float]:
        """(first frame, frames to replay, frame count, source fps) in one pass, decoding up to the first frame.

        The first frame gives the upright size (rotation metadata travels with decoded frames). Frames that an
        edit list hides (phone videos have them) are not counted. A full sample index (mp4 mov avi) gives the
        count from the header, and the decoded frames are kept for the first iteration; other containers are
        demuxed to the end, their packets counted, and rewound. A GIF's fps comes from its frame durations.
        """
        self._is_gif = stream.codec_context.name == "gif"
        entries = stream.index_entries
        indexed = bool(stream.frames) and len(entries) >= stream.frames and not self._is_gif
        decoded: list[av.VideoFrame] = []
        total, duration, first = 0, 0, None
        for packet in container.demux(stream):
            if first is None:
                decoded = packet.decode()  # the last, empty packet flushes the decoder
                first = decoded[0] if decoded else None
            if indexed and first is not None:
                break
            if packet.size and not packet.is_discard:
                total, duration = total + 1, duration + (packet.duration or 0)
        rate = stream.average_rate or stream.guessed_rate
        if indexed:
            total = sum(not e.is_discard for e in entries)
        else:
            if self._is_gif and duration > 0:
                rate = Fraction(total) / (duration * stream.time_base)
            elif first is not None:
                container.seek(0)
            decoded = []  # rewound (or, for a GIF, reopened): nothing to replay
        return first, decoded, total, float(rate) if rate else FOLDER_FPS

    def _open(self) -> av.container.InputContainer:
        try:
            container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.EOFError as exc:  # a container that ends before its first packet
            raise NSTError(f"video {self.path} has no frames; give a video with at least one frame") from exc
        except av.FFmpegError as exc:
            raise _av_error(self.path, exc) from exc
        if container.streams.video:
            container.streams.video[0].thread_type = "AUTO"
        return container

    def _indexed_frames(
        self, container: av.container.InputContainer, replay: list[av.VideoFrame]
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        """(source frame index, frame) from the keyframe before ``start`` (seeking), or from the first frame.

        ``replay``: frames the probe already decoded from this container, which come first.
        """
        stream = container.streams.video[0]
        if self._start > 0 and not self._is_gif:
            target = self._t0 + (self._start - 0.5) / self._src_fps
            with contextlib.suppress(av.FFmpegError):  # not seekable: decode on from where the file is
                container.seek(max(0, int(target / stream.time_base)), stream=stream, backward=True)
                replay = []
            frames = itertools.chain(replay, container.decode(stream))
            first = next(frames, None)
            if first is not None and first.time is not None:
                index = round((first.time - self._t0) * self._src_fps)
                if index <= self._start:  # on or before the wanted frame: count on from there
                    yield index, first
                    yield from enumerate(frames, index + 1)
                    return
            container.seek(0)  # overshot, or frames without timestamps: decode from the start
            replay = []
        yield from enumerate(itertools.chain(replay, container.decode(stream)))

    def arrays(self) -> Iterator[np.ndarray]:
        container, replay = self._kept if self._kept is not None else (self._open(), [])
        self._kept = None
        reformatter = av.video.reformatter.VideoReformatter()
        produced, index = 0, -1
        try:
            for index, frame in self._indexed_frames(container, replay):
                if index < self._start or (index - self._start) % self._every:
                    continue
                rgb = reformatter.reformat(frame, format="rgb24", src_color_range=frame.color_range, threads=0)
                array = rgb.to_ndarray()  # a view of the frame; strided where rows are padded
                if self._rotation:
                    array = np.rot90(array, k=self._rotation // 90)
                produced += 1
                yield np.ascontiguousarray(array)
                if produced == self.frame_count:
                    return
        except av.FFmpegError as exc:
            raise NSTError(
                f"frame {index + 1} of {self.path} failed to decode ({exc}); the file is damaged or truncated"
            ) from exc
        finally:
            container.close()
        if produced < self.frame_count:
            raise NSTError(
                f"{self.path} ended after {produced} of {self.frame_count} frames; the file is truncated or damaged"
            )

    def close(self) -> None:
        if self._kept is not None:
            self._kept[0].close()
            self._kept = None
