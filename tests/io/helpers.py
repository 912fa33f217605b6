"""Test media made on the fly with PyAV and Pillow: tiny clips whose frames say their own index, with a tone."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

SAMPLE_RATE = 48000
TONE_HZ = 440.0


def frame_image(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    """A uint8 RGB frame that says its index (< 48): green 10 + 20 * (index % 12), blue 40 + 60 * (index // 12).

    Levels 20 apart survive lossy coding; the top-left quadrant is red, a marker for rotations.
    """
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[...] = (0, 10 + 20 * (index % 12), 40 + 60 * (index // 12))
    frame[: height // 2, : width // 2] = (255, 10 + 20 * (index % 12), 0)
    return frame


def frame_index(frame: np.ndarray) -> int:
    """The index :func:`frame_image` wrote into a (decoded, lossy) frame."""
    green, blue = (float(np.median(frame[..., c])) for c in (1, 2))
    return round((green - 10) / 20) + 12 * round((blue - 40) / 60)


def tone(seconds: float, burst_at: float | None = None) -> np.ndarray:
    """A mono float32 440 Hz tone; with ``burst_at``, silence until that time (a sync marker)."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
    if burst_at is not None:
        wave[t < burst_at] = 0.0
    return wave.astype(np.float32)


def write_clip(
    path: Path, frames: int = 12, size: tuple[int, int] = (64, 48), fps: int = 12, *, audio: bool = True,
    burst_at: float | None = None, rotation: int | None = None, gop: int | None = None, faststart: bool = False,
    noise: bool = False, audio_codec: str | None = None, hidden: int = 0,
) -> Path:
    """A video file (codec by suffix: H.264 + AAC, or VP9 + Opus for .webm) of :func:`frame_image` frames.

    ``noise`` adds seeded pixel noise: big frames, so that the sample data, not the header, fills the file.
    ``hidden`` frames get negative timestamps, which an mp4 edit list hides (as phones do).
    """
    rng = np.random.default_rng(0)
    webm = path.suffix == ".webm"
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        video = container.add_stream("libvpx-vp9" if webm else "libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        if gop:
            video.codec_context.gop_size = gop
        if rotation is not None:
            video.set_display_rotation(rotation)
        codec = audio_codec or ("libopus" if webm else "aac")
        stream = container.add_stream(codec, rate=SAMPLE_RATE, layout="mono") if audio else None
        for i in range(frames):
            image = frame_image(i, *size)
            if noise:
                image = np.clip(image + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)
            picture = av.VideoFrame.from_ndarray(image, format="rgb24")
            picture.pts = i - hidden
            for packet in video.encode(picture):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if stream is not None:
            samples = tone(frames / fps, burst_at)
            chunk = stream.codec_context.frame_size or 1024
            for start in range(0, len(samples), chunk):
                piece = av.AudioFrame.from_ndarray(samples[None, start : start + chunk], format="flt", layout="mono")
                piece.sample_rate, piece.pts, piece.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
                for packet in stream.encode(piece):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def write_gif(path: Path, durations_ms: list[int], size: tuple[int, int] = (64, 48)) -> Path:
    """An animated GIF of :func:`frame_image` frames with the given per-frame durations."""
    images = [Image.fromarray(frame_image(i, *size)) for i in range(len(durations_ms))]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations_ms, loop=0)
    return path


def audio_track(path: Path) -> tuple[np.ndarray, float, str]:
    """(mono samples, time of the first sample, codec name) of a file's first audio stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = list(container.decode(stream))
        samples = np.concatenate([f.to_ndarray().reshape(f.layout.nb_channels, -1)[0] for f in frames])
        rate = frames[0].sample_rate
        assert rate == stream.codec_context.sample_rate
        return samples, float(frames[0].time or 0.0), stream.codec_context.name


def audio_seconds(path: Path) -> float:
    """Decoded audio duration of a file, seconds."""
    samples, _, _ = audio_track(path)
    with av.open(str(path)) as container:
        return len(samples) / container.streams.audio[0].codec_context.sample_rate


def leftovers(folder: Path) -> list[str]:
    """The hidden files of ``folder`` but a frame folder's manifest: the temporary files a writer must never leave
    behind."""
    from nst.io.frames import MANIFEST

    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != MANIFEST)
