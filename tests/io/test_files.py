"""Outputs that would write over an input are refused, however the path is spelled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nst.errors import NSTError
from nst.io.files import refuse_overwriting
from tests.helpers import make_image


def test_the_input_under_another_spelling_is_refused(tmp_path: Path) -> None:
    photo = make_image(tmp_path / "in" / "photo.png")
    (tmp_path / "link.png").symlink_to(photo)
    os.link(photo, tmp_path / "hard.png")
    for spelling in (photo, tmp_path / "in" / ".." / "in" / "photo.png", tmp_path / "link.png", tmp_path / "hard.png"):
        with pytest.raises(NSTError, match="is the input") as exc:
            refuse_overwriting(spelling, [tmp_path / "other.png", photo])
        assert "\n" not in str(exc.value)
    refuse_overwriting(tmp_path / "in" / "photo_out.png", [photo])  # a new name next to it is fine


def test_an_output_folder_inside_an_input_folder_is_refused(tmp_path: Path) -> None:
    frames = (tmp_path / "frames").resolve()
    frames.mkdir()
    with pytest.raises(NSTError, match="is the input"):
        refuse_overwriting(frames, [frames], folder=True)
    with pytest.raises(NSTError, match="inside the input folder"):
        refuse_overwriting(frames / "styled", [frames], folder=True)
    refuse_overwriting(frames / "styled.mp4", [frames])  # one video file beside the frames: no frame is replaced
    refuse_overwriting(tmp_path / "frames_styled", [frames], folder=True)
