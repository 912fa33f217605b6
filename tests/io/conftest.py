"""Fixtures of the I/O tests (the media makers are in :mod:`tests.io.helpers`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.io.helpers import write_clip


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """12 frames, 64x48, 12 fps, H.264 with a 1 s AAC tone."""
    return write_clip(tmp_path / "clip.mp4")
