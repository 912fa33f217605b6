"""Folders of frames: read images in natural order (``f2.png`` before ``f10.png``), write numbered PNGs.

A frame folder is the simplest video: no codec, lossless, resumable. The writer saves each frame
atomically, so a run stopped halfway keeps its finished frames and :func:`finished_frames` tells a
resumed run where to start. It lists what it wrote in the folder's manifest and never touches other files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nst.errors import NSTError
from nst.io.files import atomic_path
from nst.io.image import IMAGE_SUFFIXES, open_rgb
from nst.io.media import VideoReader, VideoWriter

#: A folder of images has no frame rate of its own; this one is assumed unless the caller gives another.
FOLDER_FPS = 25.0
FRAME_NAME = "frame_{:06d}.png"
_FRAME_RE = re.compile(r"frame_(\d{6})\.png")
#: The list of frames :class:`FrameFolderWriter` wrote into a folder, one name a line: the only files it ever
#: replaces or removes, and the only frames a resumed run trusts.
MANIFEST = ".nst_frames"
_MANIFEST_HEADER = "# frames written by nst; only these are replaced or removed by a later run\n"
_PNG_COMPRESS_LEVEL = 3  # about 2x faster than Pillow's default 6 for ~10% larger files
_TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def natural_key(name: str) -> list[str | int]:
    """Sort key comparing digit runs as numbers: ``f2.png`` < ``f10.png``."""
    parts = re.split(r"(\d+)", name.casefold())
    return [int(part) if i % 2 else part for i, part in enumerate(parts)] + [name]  # type: ignore[list-item]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of ``folder`` (not its subfolders, not hidden or temporary files), in natural order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NSTError(f"frame folder not found: {folder}")
    files = [
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def has_images(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a folder holding at least one image file."""
    folder = Path(folder)
    return folder.is_dir() and any(
        p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") for p in folder.iterdir()
    )


def _upright_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, after EXIF orientation, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.getexif().get(0x0112) in _TRANSPOSED_ORIENTATIONS:
                width, height = height, width
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NSTError(f"cannot read frame {path}: {exc}; remove or replace it") from exc
    return width, height


class FrameFolderReader(VideoReader):
    """The images of a folder as video frames; all selected frames must have one size (checked on open)."""

    def __init__(
        self, folder: str | os.PathLike, start: int = 0, max_frames: int | None = None, every: int = 1,
        fps: float = FOLDER_FPS,
    ) -> None:
        self.path = Path(folder)
        files = list_images(self.path)
        if not files:
            raise NSTError(f"frame folder {self.path} holds no images ({', '.join(IMAGE_SUFFIXES)}); add frames")
        self._files = files[start::every][:max_frames]
        if not self._files:
            raise NSTError(f"start={start} is past the last frame of {self.path} ({len(files)} frames); lower start")
        self.width, self.height = _upright_size(self._files[0])
        for file in self._files[1:]:
            if _upright_size(file) != (self.width, self.height):
                w, h = _upright_size(file)
                raise NSTError(
                    f"frame {file} is {w}x{h} but {self._files[0].name} is {self.width}x{self.height}: "
                    "all frames of a folder must have one size; resize or remove the odd ones"
                )
        self.fps = fps / every
        self.frame_count = len(self._files)
        self.start_time = start / fps
        self.has_audio = False

    @property
    def files(self) -> list[Path]:
        """The selected frame files, in order."""
        return list(self._files)

    def arrays(self) -> Iterator[np.ndarray]:
        for file in self._files:
            yield np.asarray(open_rgb(file))


def written_frames(folder: str | os.PathLike) -> set[str]:
    """The frame names :class:`FrameFolderWriter` recorded in ``folder``'s manifest; empty without one."""
    path = Path(folder) / MANIFEST
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return set()
    except (OSError, UnicodeDecodeError) as exc:
        raise NSTError(f"cannot read {path}: {exc}; delete that folder or choose another output") from exc
    return {line for line in lines if _FRAME_RE.fullmatch(line)}


def finished_frames(folder: str | os.PathLike) -> list[Path]:
    """The finished frames ``frame_000000.png, frame_000001.png, ...`` of an output folder, up to the first gap.

    Only frames the writer recorded in the folder's manifest count: a folder of frames made by anything else
    has none. Its length is the index a resumed run starts from (``FrameFolderWriter(folder,
    start_index=len(...))``): frames are renamed into place only when complete, so every listed file is whole.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    ours = written_frames(folder)
    indices = {int(m.group(1)) for p in folder.iterdir() if p.name in ours and (m := _FRAME_RE.fullmatch(p.name))}
    count = 0
    while count in indices:
        count += 1
    return [folder / FRAME_NAME.format(i) for i in range(count)]


def check_writable_folder(folder: Path) -> None:
    """Raise NSTError unless ``folder`` is, or can be created as, a writable folder."""
    if folder.exists() and not folder.is_dir():
        raise NSTError(f"cannot write frames into {folder}: it is a file; choose a folder name")
    parent = folder
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise NSTError(f"cannot write output {folder}: {parent} is not a writable folder; choose another output")


def is_foreign_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds files but no manifest: a folder the frame writer did not make."""
    folder = Path(folder)
    return folder.is_dir() and not (folder / MANIFEST).is_file() and any(folder.iterdir())


def check_frame_folder(folder: str | os.PathLike, overwrite: bool = False) -> None:
    """Raise NSTError unless frames may be written into ``folder``: new, empty, or made by the frame writer.

    ``overwrite=True`` allows a non-empty folder of other origin; its numbered frames are then replaced.
    """
    folder = Path(folder)
    check_writable_folder(folder)
    if not overwrite and is_foreign_folder(folder):
        raise NSTError(f"output folder {folder} is not empty and its files were not written by nst; choose a new "
                       "or empty folder, or set overwrite=true to replace its frame_NNNNNN.png files")


class FrameFolderWriter(VideoWriter):
    """Writes ``frame_000000.png, frame_000001.png, ...`` into a folder, each frame atomically.

    The folder keeps a manifest (:data:`MANIFEST`) of the frames written into it, and the writer replaces or
    removes only those: a non-empty folder it did not make is refused unless ``overwrite`` is set (then every
    numbered frame from ``start_index`` on is removed). ``start_index`` numbers the first frame (resume with
    ``len(finished_frames(folder))``); the folder is created on the first frame, and recorded frames from
    ``start_index`` on left by an earlier run are removed then, so the folder never mixes two runs. Width and
    height are taken from the first frame when not given.
    """

    def __init__(
        self, folder: str | os.PathLike, start_index: int = 0, *, fps: float = FOLDER_FPS,
        width: int | None = None, height: int | None = None, overwrite: bool = False,
    ) -> None:
        self.path = Path(folder)
        check_frame_folder(self.path, overwrite)
        self.start_index = start_index
        self.fps = fps
        self.width, self.height = width, height
        self.overwrite = overwrite
        self.frames_written = 0
        self._ours: set[str] = set()

    def _start(self) -> None:
        """Before the first frame: make the folder and its manifest, remove stale frames of earlier runs."""
        foreign = is_foreign_folder(self.path)
        if foreign and not self.overwrite:  # a file appeared since the writer was made
            check_frame_folder(self.path)
        self._ours = set() if foreign else written_frames(self.path)
        stale = {p.name for p in self.path.iterdir() if (m := _FRAME_RE.fullmatch(p.name))
                 and int(m.group(1)) >= self.start_index} if self.path.is_dir() else set()
        for name in stale if foreign or self.overwrite else stale & self._ours:
            (self.path / name).unlink(missing_ok=True)
        self._ours -= stale
        with atomic_path(self.path / MANIFEST) as tmp:
            tmp.write_text(_MANIFEST_HEADER + "".join(f"{name}\n" for name in sorted(self._ours)))

    def _write_array(self, array: np.ndarray) -> None:
        target = self.path / FRAME_NAME.format(self.start_index + self.frames_written)
        try:
            if self.frames_written == 0:
                self._start()
            if target.exists() and target.name not in self._ours and not self.overwrite:
                raise NSTError(f"{target} was not written by nst and would be replaced; move it away, or set "
                               "overwrite=true")
            with open(self.path / MANIFEST, "a") as manifest:  # recorded first: a crash leaves no unlisted frame
                manifest.write(f"{target.name}\n")
            self._ours.add(target.name)
            with atomic_path(target) as tmp:
                Image.fromarray(array).save(tmp, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
        except OSError as exc:
            raise NSTError(f"cannot write frame {target}: {exc}; check the output folder") from exc

    def close(self) -> None:
        """Nothing to finish: every frame is complete on disk once written."""
