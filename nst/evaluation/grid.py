"""Videos of the report: each method's frames as a video with the input's audio, and one labelled grid of all.

Both read the lossless frame folders the metrics were measured on, one frame at a time (memory stays flat), and
write through the foundation's writer (:func:`nst.io.video.open_writer`), which keeps the input's audio.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nst.io.media import VideoReader
from nst.io.video import open_video, open_writer

#: Tiles are scaled up (by a whole factor) until their long side reaches this, so the labels stay readable.
MIN_TILE = 240
LABEL_HEIGHT = 20


def tile_scale(width: int, height: int, min_tile: int = MIN_TILE) -> int:
    return max(1, math.ceil(min_tile / max(width, height)))


def label_band(label: str, width: int) -> np.ndarray:
    """A black band ``LABEL_HEIGHT`` px high and ``width`` wide with ``label`` in white, drawn once per tile."""
    band = Image.new("RGB", (width, LABEL_HEIGHT))
    ImageDraw.Draw(band).text((4, 3), label, fill="white", font=ImageFont.load_default(size=LABEL_HEIGHT - 6))
    return np.asarray(band)


def _scaled(frame: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return frame
    image = Image.fromarray(frame)
    return np.asarray(image.resize((image.width * scale, image.height * scale), Image.Resampling.LANCZOS))


def grid_frames(folders: Sequence[str | Path], labels: Sequence[str]) -> Iterator[np.ndarray]:
    """uint8 (H, W, 3) grid frames: every folder's frame t as a labelled tile, ceil(sqrt(n)) tiles per row."""
    readers = [open_video(folder) for folder in folders]
    try:
        columns = math.ceil(math.sqrt(len(readers)))
        rows = math.ceil(len(readers) / columns)
        scale = tile_scale(readers[0].width, readers[0].height)
        width, height = readers[0].width * scale, readers[0].height * scale + LABEL_HEIGHT
        bands = [label_band(label, width) for label in labels]
        grid = np.zeros((rows * height, columns * width, 3), np.uint8)  # empty cells stay black
        for frames in zip(*(r.arrays() for r in readers)):
            for i, (frame, band) in enumerate(zip(frames, bands)):
                top, left = divmod(i, columns)
                top, left = top * height, left * width
                grid[top:top + LABEL_HEIGHT, left:left + width] = band
                grid[top + LABEL_HEIGHT:top + height, left:left + width] = _scaled(frame, scale)
            yield grid[: grid.shape[0] // 2 * 2, : grid.shape[1] // 2 * 2].copy()  # even sides: H.264 yuv420p
    finally:
        for reader in readers:
            reader.close()


def write_grid(
    folders: Sequence[str | Path], labels: Sequence[str], path: str | Path, source: VideoReader, audio: bool = True,
    crf: int = 18,
) -> Path:
    """The labelled grid of ``folders`` as a video at ``source``'s fps, with its audio."""
    frames = grid_frames(folders, labels)
    first = next(frames)
    with open_writer(path, source.fps, first.shape[1], first.shape[0], audio_from=source, audio=audio,
                     crf=crf) as writer:
        writer.write(first)
        for frame in frames:
            writer.write(frame)
    return Path(path)


def write_frames_video(
    folder: str | Path, path: str | Path, source: VideoReader, audio: bool = True, crf: int = 18
) -> Path:
    """A frame folder as a video at ``source``'s fps, with its audio (the fast networks' stylized clips)."""
    with open_video(folder) as frames, open_writer(path, source.fps, frames.width, frames.height,
                                                   audio_from=source, audio=audio, crf=crf) as writer:
        for array in frames.arrays():
            writer.write(array)
    return Path(path)
