"""Frame folders: natural order, one size, lossless round trip, atomic frames, resuming, and a writer that
replaces or removes only the frames it wrote itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst.errors import NSTError
from nst.io.frames import MANIFEST, FrameFolderWriter, finished_frames, natural_key
from nst.io.image import load_image
from nst.io.video import is_video, open_video, open_writer
from tests.io.helpers import frame_image, frame_index, leftovers


def make_folder(folder: Path, names: list[str], size: tuple[int, int] = (64, 48)) -> Path:
    """Frames named ``names``; frame ``names[i]`` carries index ``i``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(frame_image(i, *size)).save(folder / name)
    return folder


def test_natural_order() -> None:
    names = ["f10.png", "f2.png", "F1.png", "f1b.png", "g.png"]
    assert sorted(names, key=natural_key) == ["F1.png", "f1b.png", "f2.png", "f10.png", "g.png"]


def test_folder_frames_are_read_in_numeric_order(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    make_folder(folder, [f"f{i}.png" for i in range(12)])
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".f99.tmp.png").write_bytes(b"half a frame")  # hidden temporary files are not frames
    assert is_video(folder)
    with open_video(folder) as reader:
        assert (reader.frame_count, reader.width, reader.height, reader.has_audio) == (12, 64, 48, False)
        assert [frame_index(a) for a in reader.arrays()] == list(range(12))  # f2 before f10


def test_folder_frames_equal_load_image(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "in", ["a1.jpg", "a2.jpg"])
    with open_video(folder) as reader:
        frames = list(reader)
    assert torch.equal(frames[1], load_image(folder / "a2.jpg", min_side=None))


def test_folder_to_folder_round_trip_is_lossless_and_in_order(tmp_path: Path) -> None:
    src = make_folder(tmp_path / "in", [f"img_{i}.png" for i in range(10)])
    out = tmp_path / "out"
    with open_video(src, start=1, every=2, max_frames=4) as reader:
        assert reader.fps == 12.5  # 25 fps assumed for a folder, halved by every=2
        with open_writer(out, reader.fps, reader.width, reader.height) as writer:
            for frame in reader:
                writer.write(frame)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST] + [f"frame_{i:06d}.png" for i in range(4)]
    with open_video(out) as reader:
        back = list(reader.arrays())
    assert [frame_index(a) for a in back] == [1, 3, 5, 7]
    assert np.array_equal(back[0], frame_image(1))


def test_mixed_sizes_are_refused(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "in", ["1.png", "2.png"])
    make_folder(folder, ["3.png"], size=(32, 48))
    with pytest.raises(NSTError, match=r"3\.png is 32x48") as exc:
        open_video(folder)
    assert "\n" not in str(exc.value)


def test_folder_without_images_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("no frames here")
    assert not is_video(folder)
    with pytest.raises(NSTError, match="no images"):
        open_video(folder)


def test_frame_failing_halfway_raises_one_line_and_leaves_no_video(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "in", [f"{i}.png" for i in range(4)])
    broken = folder / "2.png"
    broken.write_bytes(broken.read_bytes()[:80])  # the header survives, the pixels do not
    out = tmp_path / "out.mp4"
    with pytest.raises(NSTError, match="2.png") as exc:
        with open_video(folder) as reader, open_writer(out, reader.fps, reader.width, reader.height) as writer:
            for frame in reader:
                writer.write(frame)
    assert "\n" not in str(exc.value)
    assert not out.exists() and leftovers(tmp_path) == []


def test_stopped_run_keeps_finished_frames_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt), FrameFolderWriter(out) as writer:
        for i in range(3):
            writer.write(frame_image(i))
        raise KeyboardInterrupt
    done = finished_frames(out)
    assert [p.name for p in done] == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    assert leftovers(out) == []
    with FrameFolderWriter(out, start_index=len(done)) as writer:
        for i in range(3, 5):
            writer.write(torch.from_numpy(frame_image(i)).permute(2, 0, 1)[None] / 255.0)
    with open_video(out) as reader:
        assert [frame_index(a) for a in reader.arrays()] == [0, 1, 2, 3, 4]


def test_finished_frames_stop_at_the_first_gap_and_count_only_the_writers_own(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FrameFolderWriter(out) as writer:
        for i in range(4):
            writer.write(frame_image(i))
    (out / "frame_000002.png").unlink()
    assert len(finished_frames(out)) == 2
    assert finished_frames(tmp_path / "missing") == []
    foreign = make_folder(tmp_path / "foreign", ["frame_000000.png", "frame_000001.png"])
    assert finished_frames(foreign) == []  # frames nst did not write are never resumed from


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_folder_the_writer_did_not_make_is_refused_and_kept(tmp_path: Path) -> None:
    out = make_folder(tmp_path / "out", [f"frame_{i:06d}.png" for i in range(3)] + ["holiday.png"])
    before = _snapshot(out)
    with pytest.raises(NSTError, match="not empty and its files were not written by nst") as exc:
        open_writer(out, 25, 64, 48)
    assert "\n" not in str(exc.value) and "overwrite=true" in str(exc.value)
    assert _snapshot(out) == before


def test_overwrite_replaces_the_numbered_frames_of_a_foreign_folder_and_keeps_the_rest(tmp_path: Path) -> None:
    out = make_folder(tmp_path / "out", [f"frame_{i:06d}.png" for i in range(6)] + ["keep.txt.png"])
    with open_writer(out, 25, 64, 48, overwrite=True) as writer:
        writer.write(np.stack([frame_image(7), frame_image(8)]))
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "frame_000000.png", "frame_000001.png", "keep.txt.png"]
    with open_video(out) as reader:
        assert [frame_index(a) for a in reader.arrays()] == [7, 8, 6]  # keep.txt.png (frame 6) is untouched


def test_a_new_run_removes_only_the_frames_the_writer_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with open_writer(out, 25, 64, 48) as writer:
        writer.write(np.stack([frame_image(i) for i in range(6)]))
    foreign = make_folder(tmp_path / "elsewhere", ["x.png"])
    (foreign / "x.png").rename(out / "frame_000009.png")  # put there by hand after the run
    (out / "notes.txt").write_text("mine")
    kept = (out / "frame_000009.png").read_bytes()
    with open_writer(out, 25, 64, 48) as writer:
        writer.write(np.stack([frame_image(7), frame_image(8)]))
    assert sorted(p.name for p in out.iterdir() if p.name != MANIFEST) == [
        "frame_000000.png", "frame_000001.png", "frame_000009.png", "notes.txt"]
    assert (out / "frame_000009.png").read_bytes() == kept and (out / "notes.txt").read_text() == "mine"
    (out / "frame_000002.png").write_bytes(kept)  # a file nst did not write, where the next frame goes
    with pytest.raises(NSTError, match="frame_000002.png was not written by nst"), \
            FrameFolderWriter(out, start_index=2) as writer:
        writer.write(frame_image(9))
    assert (out / "frame_000002.png").read_bytes() == kept


def test_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "frames"):
        with pytest.raises(NSTError, match="cannot write"):
            FrameFolderWriter(out)
