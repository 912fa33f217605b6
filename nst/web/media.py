"""What the server accepts as an upload: the type told by the file's first bytes (never by its name), then
checked by decoding it, within the limits on bytes, pixels (decompression bombs) and video length.

Every refusal is a :class:`BadUpload`, one line for the page, with the HTTP status to answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from nst.errors import NSTError
from nst.io.video import open_video

IMAGES = (".jpg", ".png", ".webp", ".bmp", ".tif")
VIDEOS = (".mp4", ".mov", ".mkv", ".webm", ".gif")
#: What the page says it takes.
ACCEPTED = "a photo (JPEG, PNG, WebP) or a video (MP4, MOV, WebM, GIF)"
#: VGG pools five times: smaller pictures leave nothing for its deepest layers (nst.io.image.MIN_SIDE).
MIN_SIDE = 32


class BadUpload(NSTError):
    """An upload the server refuses; ``status`` is the HTTP status of the answer (400, 413 or 415)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class MediaInfo:
    """What the page shows of an upload, and what a job needs to know of its input."""

    kind: str  # image | video
    suffix: str  # the file's real type, as a suffix: what it is saved as
    width: int
    height: int
    frames: int = 1
    seconds: float = 0.0
    fps: float = 0.0
    has_audio: bool = False
    bytes: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def sniff(head: bytes) -> str | None:
    """The suffix of the format whose signature starts ``head`` (its first 64 bytes), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ".gif"
    if head.startswith(b"BM") and len(head) > 14 and head[6:10] == b"\0\0\0\0":
        return ".bmp"
    if head.startswith((b"II*\0", b"MM\0*")):
        return ".tif"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, or WebM when its doctype says so
        return ".webm" if b"webm" in head else ".mkv"
    if head[4:8] == b"ftyp":
        return ".mov" if head[8:12] == b"qt  " else ".mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return ".mov"
    return None


def save_upload(source: BinaryIO, target: Path, max_mb: float, what: str = "the file") -> int:
    """Copy an upload to ``target`` (a name the server chose), refusing more than ``max_mb``; its size."""
    copied, max_bytes = 0, int(max_mb * 2**20)
    with open(target, "wb") as out:
        while block := source.read(1 << 20):
            copied += len(block)
            if copied > max_bytes:
                break
            out.write(block)
    if copied > max_bytes:
        target.unlink(missing_ok=True)
        raise BadUpload(f"{what} is larger than this server's limit of {max_mb:g} MB", 413)
    if copied == 0:
        target.unlink(missing_ok=True)
        raise BadUpload(f"{what} is empty; choose {ACCEPTED}")
    return copied


def probe(path: Path, max_pixels: int, max_seconds: float, what: str = "the file",
          images_only: bool = False) -> MediaInfo:
    """Check the upload saved at ``path`` and describe it; raises :class:`BadUpload` with one line."""
    with open(path, "rb") as f:
        suffix = sniff(f.read(64))
    accepted = "a picture (JPEG, PNG, WebP)" if images_only else ACCEPTED
    if suffix is None or (images_only and suffix not in IMAGES):
        raise BadUpload(f"{what} is not {accepted}, whatever its name says", 415)
    size = path.stat().st_size
    if suffix in IMAGES:
        return _probe_image(path, suffix, size, max_pixels, what)
    return _probe_video(path, suffix, size, max_pixels, max_seconds, what)


def _probe_image(path: Path, suffix: str, size: int, max_pixels: int, what: str) -> MediaInfo:
    try:
        with Image.open(path) as img:
            width, height = img.size
            _check_pixels(width, height, max_pixels, what)
            img.load()  # decodes every byte: a truncated or corrupt file fails here, not in a job
            width, height = ImageOps.exif_transpose(img).size
    except Image.DecompressionBombError:
        raise BadUpload(f"{what} has too many pixels (more than {max_pixels / 1e6:.0f} megapixels)", 413) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadUpload(f"{what} looks like a {suffix[1:].upper()} picture but cannot be decoded ({exc})") from None
    _check_sides(width, height, what)
    return MediaInfo("image", suffix, width, height, bytes=size)


def _probe_video(path: Path, suffix: str, size: int, max_pixels: int, max_seconds: float, what: str) -> MediaInfo:
    try:
        with open_video(path) as reader:
            width, height, frames, fps = reader.width, reader.height, reader.frame_count or 0, reader.fps
            has_audio = bool(reader.has_audio)
    except NSTError as exc:
        reason = str(exc).replace(str(path), "it")  # the server's own paths stay out of the answer
        raise BadUpload(f"{what} is not a readable video: {reason}") from None
    except Exception as exc:  # the decoder library's own errors: a damaged file
        raise BadUpload(f"{what} is not a readable video ({type(exc).__name__})") from None
    _check_pixels(width, height, max_pixels, what)
    _check_sides(width, height, what)
    seconds = frames / fps if fps > 0 else 0.0
    if seconds > max_seconds:
        raise BadUpload(f"{what} lasts {seconds:.0f} s, longer than this server's limit of {max_seconds:.0f} s; "
                        "cut it shorter", 413)
    return MediaInfo("video", suffix, width, height, frames, round(seconds, 3), round(fps, 3), has_audio, size)


def _check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise BadUpload(f"{what} is {width}x{height}, more than this server's limit of {max_pixels / 1e6:.0f} "
                        "megapixels; make it smaller", 413)


def _check_sides(width: int, height: int, what: str) -> None:
    if min(width, height) < MIN_SIDE:
        raise BadUpload(f"{what} is {width}x{height}: both sides need at least {MIN_SIDE} px")
