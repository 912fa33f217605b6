"""Atomic file writes (an output appears complete under its final name, or not at all), and outputs that
would write over an input, refused."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from nst.errors import NSTError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the target's suffix, so writers that pick a format by extension still work.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; give outputs the usual mode
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def refuse_overwriting(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], *, folder: bool = False) -> None:
    """Raise NSTError when writing ``output`` would write over one of ``inputs``.

    Paths are compared resolved (symlinks, ``..``) and, when both exist, as files (hard links, case-insensitive
    file systems). With ``folder=True``, ``output`` is a folder to write into: it may neither be an input nor lie
    inside an input folder.
    """
    target = Path(output).expanduser().resolve()
    for source in inputs:
        src = Path(source).expanduser().resolve()
        same = target == src or (target.exists() and src.exists() and os.path.samefile(target, src))
        if same:
            raise NSTError(f"output {output} is the input {source}: writing it would destroy the input; "
                           "choose another output")
        if folder and src.is_dir() and target.is_relative_to(src):
            raise NSTError(f"output folder {output} is inside the input folder {source}: the outputs would mix "
                           "with the inputs; choose a folder outside it")


def file_digest(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, in hex: what a file holds, whatever its name or time stamp."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
