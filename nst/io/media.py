"""The reader and writer interfaces shared by video files, GIFs and frame folders.

Frames cross this boundary in two forms: (1, 3, H, W) float32 tensors in [0, 1] (the project's image
convention) and uint8 (H, W, 3) RGB arrays (the codecs' form, for fast paths that skip torch). The
conversions between the two live here and nowhere else.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np
import torch


def array_to_tensor(array: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """A uint8 (H, W, 3) RGB array as a contiguous (1, 3, H, W) float32 tensor in [0, 1].

    On the CPU it is converted in NumPy, in one pass (transpose + cast) then divided in place: several times
    faster than torch's permute + float, and equal to :func:`nst.io.image.pil_to_tensor` bit for bit. For
    another ``device`` the uint8 array is moved first (a quarter of the bytes) and converted there.
    """
    if device is not None and torch.device(device).type != "cpu":
        moved = torch.from_numpy(np.ascontiguousarray(array)).to(device, non_blocking=True)
        return moved.permute(2, 0, 1).unsqueeze(0).float().div_(255.0).contiguous()
    planar = array.transpose(2, 0, 1).astype(np.float32, order="C")
    planar /= 255.0
    return torch.from_numpy(planar).unsqueeze(0)


def frames_to_arrays(
    frames: torch.Tensor | np.ndarray, height: int | None = None, width: int | None = None
) -> list[np.ndarray]:
    """Frames in any accepted form as a list of C-contiguous uint8 (H, W, 3) RGB arrays.

    Accepted: float tensors (3, H, W) or (B, 3, H, W) in [0, 1] (clamped, rounded; on any device, converted
    to uint8 before leaving it), uint8 tensors in the same layouts, and uint8 arrays (H, W, 3) or (B, H, W, 3).
    A ``height``/``width`` that is given must match.
    """
    if isinstance(frames, torch.Tensor):
        batch = frames.detach()
        if batch.dim() == 3:
            batch = batch.unsqueeze(0)
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected frames of shape (B, 3, H, W), got {tuple(frames.shape)}")
        if batch.dtype != torch.uint8:
            batch = batch.float().clamp(0, 1).mul(255).round_().to(torch.uint8)
        batch = batch.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    else:
        batch = np.asarray(frames)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[3] != 3:
            raise ValueError(f"expected uint8 frames of shape (B, H, W, 3), got {batch.dtype} {batch.shape}")
    if (height is not None and batch.shape[1] != height) or (width is not None and batch.shape[2] != width):
        raise ValueError(f"frames are {batch.shape[2]}x{batch.shape[1]}, the writer expects {width}x{height}")
    return [np.ascontiguousarray(frame) for frame in batch]


class VideoReader(abc.ABC):
    """Frames of a video file, an animated GIF or a folder of images, decoded lazily one at a time.

    Attributes: ``path``; ``fps`` (the output rate: source fps / ``every``); ``frame_count`` (frames after
    ``start``/``max_frames``/``every``, None where the source cannot tell); ``width`` and ``height`` (upright,
    after any rotation metadata); ``has_audio``; ``start_time`` (seconds of the first selected frame on the
    source's timeline, where an audio passthrough starts). Iterating twice decodes the source twice.
    """

    path: Path
    fps: float
    frame_count: int | None
    width: int
    height: int
    has_audio: bool = False
    start_time: float = 0.0

    @abc.abstractmethod
    def arrays(self) -> Iterator[np.ndarray]:
        """The selected frames as uint8 (H, W, 3) RGB arrays."""

    def __iter__(self) -> Iterator[torch.Tensor]:
        """The selected frames as (1, 3, H, W) float32 tensors in [0, 1]."""
        for array in self.arrays():
            yield array_to_tensor(array)

    def close(self) -> None:
        """Release open files; a reader holds none between iterations, so this is cheap."""
        return None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.path)!r}, {self.width}x{self.height}, fps={self.fps:.3f}, "
            f"frames={self.frame_count}, audio={self.has_audio})"
        )


class VideoWriter(abc.ABC):
    """Writes frames to a video file, a GIF or a frame folder; a context manager.

    Leaving the ``with`` block normally finishes the output (a file appears under its final name only then);
    leaving it by an exception discards the unfinished file.
    """

    path: Path
    fps: float
    width: int | None
    height: int | None
    frames_written: int = 0

    def write(self, frames: torch.Tensor | np.ndarray) -> None:
        """Append frames: float tensors (1|B, 3, H, W) in [0, 1], or uint8 arrays (H, W, 3) / (B, H, W, 3)."""
        for array in frames_to_arrays(frames, self.height, self.width):
            if self.width is None or self.height is None:  # a writer that takes its size from the first frame
                self.height, self.width = array.shape[:2]
            self._write_array(array)
            self.frames_written += 1

    @abc.abstractmethod
    def _write_array(self, array: np.ndarray) -> None:
        """Write one uint8 (H, W, 3) frame."""

    @abc.abstractmethod
    def close(self) -> None:
        """Finish the output: flush encoders and move the file to its final name."""

    def abort(self) -> None:
        """Stop without finishing; an unfinished file is removed (a frame folder keeps its finished frames)."""
        return None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
