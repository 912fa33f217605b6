"""Video file writers through PyAV: H.264 (mp4 mov mkv), VP9 (webm) with the source's audio, and GIF.

Each writes to a temporary name in the output folder and renames it when complete (``atomic_path``), so a
failed or interrupted run leaves nothing under the output name. Frames are converted from RGB with the
BT.709 matrix in limited range and tagged so (the HD convention players assume). yuv420p needs even sizes;
odd widths or heights are encoded as yuv444p (H.264 High 4:4:4), so the output keeps the exact size.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from PIL import Image

from nst.errors import NSTError
from nst.io.audio import AudioPassthrough
from nst.io.files import atomic_path
from nst.io.media import VideoReader, VideoWriter

if TYPE_CHECKING:
    import torch

_BT709 = 1  # AVCOL_SPC_BT709 / AVCOL_PRI_BT709 / AVCOL_TRC_BT709
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG
_GIF_TIME_BASE = Fraction(1, 100)  # GIF frame delays are in centiseconds
#: libx264 preset of the writers: the smallest files at crf 18 and about as fast as ultrafast (bench/video_io_speed.py).
DEFAULT_PRESET = "veryfast"
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def frame_rate(fps: float) -> Fraction:
    """``fps`` as the exact rational a container stores: 29.97 -> 30000/1001, 12.1212... -> 400/33."""
    return Fraction(fps).limit_denominator(1001)


class _AtomicWriter(VideoWriter):
    """A writer whose PyAV container lives at a temporary name until :meth:`close` renames it."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        self.path, self.fps, self.width, self.height = Path(path), fps, width, height
        self.frames_written = 0
        self._done = False
        self._atomic = atomic_path(self.path)
        try:
            self._tmp = self._atomic.__enter__()
            self._container = av.open(str(self._tmp), "w", format=_FORMATS.get(self.path.suffix.lower()))
        except (OSError, av.FFmpegError) as exc:
            self._discard()
            raise NSTError(f"cannot write {self.path}: {exc}; choose a writable output folder") from exc

    def write(self, frames: torch.Tensor | np.ndarray) -> None:  # codec and disk errors become NSTError
        try:
            super().write(frames)
        except (OSError, av.FFmpegError) as exc:
            raise NSTError(f"cannot write frame {self.frames_written} of {self.path}: {exc}") from exc

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            self._container.mux(packet)

    def _finish(self) -> None:
        """Flush encoders into the container (before it is closed)."""

    def close(self) -> None:
        if self._done:
            return
        try:
            if self.frames_written == 0:
                raise NSTError(f"no frames were given for {self.path}; nothing was written")
            self._finish()
            self._container.close()
            self._done = True
            self._atomic.__exit__(None, None, None)
        except (OSError, av.FFmpegError) as exc:
            self.abort()
            raise NSTError(f"cannot finish {self.path}: {exc}; check the disk and the output folder") from exc
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(OSError, av.FFmpegError):
            self._container.close()
        self._discard()

    def _discard(self) -> None:
        self._atomic.__exit__(_Discarded, _Discarded(), None)  # atomic_path removes the temporary file


class _Discarded(Exception):
    """Thrown into ``atomic_path`` so that it removes the temporary file instead of renaming it."""


_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".gif": "gif"}


class FileVideoWriter(_AtomicWriter):
    """H.264 (libx264: ``crf``, ``preset``) or, for ``.webm``, VP9 (libvpx: ``crf`` on its 0-63 scale).

    With ``audio_from``, that reader's audio from its ``start_time`` on is muxed in as frames are written
    (see :mod:`nst.io.audio`), and cut at the end of the last frame written.
    """

    def __init__(
        self, path: str | os.PathLike, fps: float, width: int, height: int, *,
        audio_from: VideoReader | None = None, crf: int = 18, preset: str = DEFAULT_PRESET,
    ) -> None:
        vp9 = Path(path).suffix.lower() == ".webm"
        if not 0 <= crf <= (63 if vp9 else 51) or (not vp9 and preset not in X264_PRESETS):
            raise NSTError(
                f"cannot write {path} with crf={crf}, preset={preset!r}: crf goes from 0 (lossless) to "
                f"{63 if vp9 else 51}; presets are {', '.join(X264_PRESETS)}"
            )
        super().__init__(Path(path), fps, width, height)
        self._audio: AudioPassthrough | None = None
        try:
            stream = self._container.add_stream("libvpx-vp9" if vp9 else "libx264", rate=frame_rate(fps))
            stream.width, stream.height = width, height
            even = width % 2 == 0 and height % 2 == 0
            stream.pix_fmt = "yuv420p" if even or vp9 else "yuv444p"  # VP9 codes odd 4:2:0 sizes; x264 cannot
            ctx = stream.codec_context
            ctx.colorspace = ctx.color_primaries = ctx.color_trc = _BT709
            ctx.color_range = _LIMITED_RANGE
            if vp9:  # constant quality (b:v 0), multithreaded rows; "good" with cpu-used 4 is libvpx's fast-good
                stream.options = {"crf": str(crf), "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}
            else:
                stream.options = {"crf": str(crf), "preset": preset}
            ctx.thread_count = 0  # all cores
            ctx.open()  # now, so that a codec error shows here and not at the first frame
            self._stream = stream
            self._reformatter = av.video.reformatter.VideoReformatter()
            if audio_from is not None:
                self._audio = AudioPassthrough(Path(audio_from.path), audio_from.start_time, self._container)
        except (av.FFmpegError, ValueError) as exc:
            self.abort()
            raise NSTError(f"cannot set up {self.path} (crf={crf}, preset={preset!r}): {exc}") from exc
        except BaseException:
            self.abort()
            raise

    def _write_array(self, array: np.ndarray) -> None:
        rgb = av.VideoFrame.from_ndarray(array, format="rgb24")
        frame = self._reformatter.reformat(
            rgb, format=self._stream.pix_fmt, src_colorspace="ITU709", dst_colorspace="ITU709",
            dst_color_range="MPEG", threads=0,
        )
        frame.pts = self.frames_written
        self._mux(self._stream.encode(frame))
        if self._audio is not None:
            self._audio.write_until((self.frames_written + 1) / self.fps, self._container)

    def _finish(self) -> None:
        self._mux(self._stream.encode(None))
        if self._audio is not None:
            self._audio.finish(self.frames_written / self.fps, self._container)

    def abort(self) -> None:
        if self._audio is not None:
            self._audio.close()
        super().abort()


class GifWriter(_AtomicWriter):
    """An animated GIF at ``fps`` (delays in centiseconds, rounded so the total time stays exact).

    Each frame gets its own 256-colour palette (median cut, no dithering: dithering noise would change from
    frame to frame, the very flicker this project removes).
    """

    def __init__(self, path: str | os.PathLike, fps: float, width: int, height: int) -> None:
        super().__init__(Path(path), fps, width, height)
        stream = self._container.add_stream("gif", rate=frame_rate(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "pal8"
        stream.time_base = stream.codec_context.time_base = _GIF_TIME_BASE
        self._stream = stream

    def _write_array(self, array: np.ndarray) -> None:
        quantized = Image.fromarray(array).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        rgb = np.asarray(quantized.getpalette()[: 3 * 256], dtype=np.uint8).reshape(-1, 3)
        palette = np.zeros((256, 4), dtype=np.uint8)  # ARGB, opaque
        palette[:, 0] = 255
        palette[: len(rgb), 1:] = rgb
        frame = av.VideoFrame.from_ndarray((np.asarray(quantized), palette), format="pal8")
        frame.pts = round(self.frames_written / self.fps / _GIF_TIME_BASE)
        frame.time_base = _GIF_TIME_BASE
        self._mux(self._stream.encode(frame))

    def _finish(self) -> None:
        self._mux(self._stream.encode(None))
