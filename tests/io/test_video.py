"""Video files: round trips with audio, frame selection, rotation, GIF timing, odd sizes, bad input."""

from __future__ import annotations

import weakref
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from nst.errors import NSTError
from nst.io.video import is_video, open_video, open_writer
from tests.io.helpers import (
    audio_seconds,
    audio_track,
    frame_image,
    frame_index,
    leftovers,
    write_clip,
    write_gif,
)


def convert(src: Path, dst: Path, *, audio: bool = True, **select: int) -> None:
    """What the video commands do, minus the styling: every selected frame of ``src`` into ``dst``."""
    with open_video(src, **select) as reader:
        with open_writer(dst, reader.fps, reader.width, reader.height, audio_from=reader, audio=audio) as writer:
            for frame in reader:
                writer.write(frame)


def indices(path: Path) -> list[int]:
    with open_video(path) as reader:
        return [frame_index(a) for a in reader.arrays()]


def test_mp4_with_audio_round_trip_keeps_frames_size_fps_and_audio(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    convert(clip, out)
    with open_video(out) as reader:
        assert (reader.frame_count, reader.width, reader.height, reader.fps, reader.has_audio) == (12, 64, 48, 12, True)
    assert indices(out) == list(range(12))
    assert audio_track(out)[2] == "aac"  # copied, not re-encoded to something else
    assert audio_seconds(out) == pytest.approx(audio_seconds(clip), abs=0.03)
    assert leftovers(tmp_path) == []


def test_reader_frames_are_float_tensors_and_arrays_agree(clip: Path) -> None:
    with open_video(clip) as reader:
        tensors = list(reader)
        arrays = list(reader.arrays())  # a reader can be iterated again
    assert len(tensors) == len(arrays) == 12
    assert tensors[0].shape == (1, 3, 48, 64) and tensors[0].dtype == torch.float32
    assert 0.0 <= float(tensors[5].min()) and float(tensors[5].max()) <= 1.0
    assert torch.equal(tensors[3][0].permute(1, 2, 0), torch.from_numpy(arrays[3]).float() / 255)
    assert np.abs(arrays[0].astype(int) - frame_image(0)).mean() < 3  # colours survive the H.264 round trip


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm", ".gif"])
@pytest.mark.parametrize("start", [0, 3])
def test_every_iteration_gives_the_same_frames(tmp_path: Path, suffix: str, start: int) -> None:
    if suffix == ".gif":
        src = write_gif(tmp_path / "clip.gif", [100] * 12)
    else:
        src = write_clip(tmp_path / f"clip{suffix}", audio=False)
    with open_video(src, start=start) as reader:  # the first pass reuses the probe's open file, the second not
        first, second = [frame_index(a) for a in reader.arrays()], [frame_index(a) for a in reader.arrays()]
    assert first == second == list(range(start, 12))


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])  # AAC copied into mp4; re-encoded to Opus for webm
def test_max_frames_cuts_the_audio(clip: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"half{suffix}"
    convert(clip, out, max_frames=6)
    assert indices(out) == list(range(6))
    assert audio_seconds(out) == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mkv"])
def test_start_keeps_audio_in_sync(tmp_path: Path, suffix: str) -> None:
    src = write_clip(tmp_path / "burst.mp4", frames=12, burst_at=0.5)  # sound starts with frame 6
    out = tmp_path / f"from3{suffix}"
    convert(src, out, start=3)
    assert indices(out) == list(range(3, 12))
    samples, first_time, _ = audio_track(out)
    assert np.abs(samples).max() > 0.3
    with open_video(out) as reader:
        video_start = reader.start_time  # mkv shifts both streams so that the audio pre-roll is not negative
    onset = first_time + np.argmax(np.abs(samples) > 0.1) / 48000 - video_start
    assert onset == pytest.approx(0.25, abs=0.02)  # frame 6 is shown (6 - 3) / 12 s after the first frame


def test_audio_the_container_cannot_take_is_encoded_to_aac(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "pcm.mkv", audio_codec="pcm_s16le")  # mp4 cannot hold PCM
    out = tmp_path / "out.mp4"
    convert(src, out, start=2, max_frames=6)
    samples, _, codec = audio_track(out)
    assert codec == "aac"
    assert audio_seconds(out) == pytest.approx(0.5, abs=0.03)
    assert np.abs(samples).max() > 0.3


def test_frames_hidden_by_an_edit_list_are_not_counted(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "edited.mp4", audio=False, hidden=2)
    with open_video(src) as reader:
        assert reader.frame_count == 10  # not the 12 samples stored: no false "truncated" at the end
        assert [frame_index(a) for a in reader.arrays()] == list(range(2, 12))


def test_every_keeps_every_nth_frame_at_a_lower_rate(clip: Path, tmp_path: Path) -> None:
    with open_video(clip, start=1, every=3) as reader:
        assert (reader.fps, reader.frame_count) == (4, 4)
        assert [frame_index(a) for a in reader.arrays()] == [1, 4, 7, 10]
    out = tmp_path / "every.mp4"
    convert(clip, out, every=3)
    with open_video(out) as reader:
        assert (reader.fps, reader.frame_count) == (4, 4)
    assert audio_seconds(out) == pytest.approx(1.0, abs=0.03)  # same span of time, fewer frames


def test_start_seeks_instead_of_decoding_from_the_beginning(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "long.mp4", frames=40, audio=False, gop=4)
    reader = open_video(src, start=30, max_frames=3)
    with reader._open() as container:  # noqa: SLF001 - where decoding starts is the point of this test
        first_index, _ = next(reader._indexed_frames(container, []))  # noqa: SLF001
    assert 24 <= first_index <= 30
    assert [frame_index(a) for a in reader.arrays()] == [30, 31, 32]


def test_reader_keeps_no_frames(clip: Path) -> None:
    refs = []
    with open_video(clip) as reader:
        for frame in reader:
            refs.append(weakref.ref(frame))
            del frame
    assert all(ref() is None for ref in refs)  # memory stays flat: nothing holds decoded frames
    assert not any(isinstance(v, (list, np.ndarray, torch.Tensor)) for v in vars(reader).values())


def test_phone_rotation_comes_out_upright(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "phone.mp4", audio=False, rotation=-90)  # shown turned 90 deg clockwise
    with open_video(src) as reader:
        assert (reader.width, reader.height) == (48, 64)
        first = next(reader.arrays())
    assert first.shape == (64, 48, 3)
    assert first[5, 40, 0] > 200 and first[5, 5, 0] < 60  # the red top-left quadrant is now top right


def test_gif_in_mp4_out_takes_fps_from_durations(tmp_path: Path) -> None:
    src = write_gif(tmp_path / "anim.gif", [80, 120, 100, 100, 60, 140])  # 0.6 s for 6 frames: 10 fps
    with open_video(src) as reader:
        assert (reader.fps, reader.frame_count, reader.has_audio) == (pytest.approx(10), 6, False)
    out = tmp_path / "anim.mp4"
    convert(src, out)
    with open_video(out) as reader:
        assert (reader.fps, reader.frame_count) == (pytest.approx(10), 6)
    assert indices(out) == list(range(6))


def test_gif_out_keeps_timing_and_colours(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.gif"
    convert(clip, out)
    with open_video(out) as reader:
        assert reader.fps == pytest.approx(12, rel=0.01)
        assert reader.frame_count == 12
    assert indices(out) == list(range(12))


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mkv"])
def test_odd_size_decodes_back_at_its_exact_size(tmp_path: Path, suffix: str) -> None:
    y, x = np.mgrid[0:53, 0:97]
    frames = [np.stack([x * 2 + i, y * 4, np.full_like(x, 90)], axis=2).astype(np.uint8) for i in range(3)]
    out = tmp_path / f"odd{suffix}"
    with open_writer(out, 10, 97, 53) as writer:
        writer.write(np.stack(frames))
    with open_video(out) as reader:
        assert (reader.width, reader.height, reader.frame_count) == (97, 53, 3)
        back = list(reader.arrays())
    assert back[0].shape == (53, 97, 3)
    assert np.abs(back[2].astype(int) - frames[2]).mean() < 3


def test_writer_takes_float_batches_and_uint8_arrays(tmp_path: Path) -> None:
    out = tmp_path / "mixed.mp4"
    with open_writer(out, 12, 64, 48) as writer:
        writer.write(torch.stack([torch.from_numpy(frame_image(i)).permute(2, 0, 1) / 255.0 for i in range(2)]))
        writer.write(frame_image(2))
        writer.write(torch.from_numpy(frame_image(3)).permute(2, 0, 1)[None] / 255.0)
        assert writer.frames_written == 4
        with pytest.raises(ValueError, match="64x48"):
            writer.write(np.zeros((10, 10, 3), np.uint8))
    assert indices(out) == [0, 1, 2, 3]


def test_audio_false_drops_the_audio(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "silent.mp4"
    convert(clip, out, audio=False)
    with open_video(out) as reader:
        assert not reader.has_audio and reader.frame_count == 12


def test_is_video(tmp_path: Path, clip: Path) -> None:
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "a.png").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    assert is_video(clip) and is_video("x.MOV") and is_video("x.gif") and is_video(tmp_path / "frames")
    assert not is_video("x.png") and not is_video(tmp_path / "empty") and not is_video("notes.txt")


# --- bad input: one NSTError line, nothing under the output name ---------------------------------------------
def _one_line(exc: pytest.ExceptionInfo[NSTError]) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NSTError) as exc:
        convert(tmp_path / "nope.mp4", tmp_path / "out.mp4")
    assert "not found" in _one_line(exc)
    assert not (tmp_path / "out.mp4").exists()


def test_not_a_video(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n" * 50)
    with pytest.raises(NSTError) as exc:
        convert(fake, tmp_path / "out.mp4")
    assert "fake.mp4" in _one_line(exc)
    audio_only = tmp_path / "sound.m4a"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(NSTError, match="no video stream"):
        open_video(audio_only)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.mp4", "sound.m4a"]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_zero_frames(tmp_path: Path, suffix: str) -> None:
    empty = tmp_path / f"empty{suffix}"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    with pytest.raises(NSTError) as exc:
        open_video(empty)
    assert "no frames" in _one_line(exc) or "no video stream" in _one_line(exc)


def test_bad_selection(clip: Path) -> None:
    with pytest.raises(NSTError, match="past the last frame"):
        open_video(clip, start=12)
    with pytest.raises(NSTError, match="every"):
        open_video(clip, every=0)


def test_frame_failing_halfway_leaves_no_output(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "whole.mp4", frames=12, size=(96, 64), audio=False, faststart=True, noise=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size * 6 // 10])
    out = tmp_path / "out.mp4"
    with pytest.raises(NSTError) as exc:
        convert(cut, out)
    assert "truncated" in _one_line(exc)
    assert not out.exists() and leftovers(tmp_path) == []


def test_output_folder_that_cannot_be_written(clip: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    for out in (blocker / "out.mp4", blocker / "out.gif", blocker / "frames", blocker):
        with pytest.raises(NSTError) as exc:
            convert(clip, out)
        assert "cannot write" in _one_line(exc)
    assert blocker.read_text().startswith("a file")


def test_unsupported_output_suffix(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(NSTError, match=".mp4"):
        convert(clip, tmp_path / "out.avi")


def test_error_inside_the_writer_block_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), open_writer(out, 12, 64, 48) as writer:
        writer.write(frame_image(0))
        raise RuntimeError("stopped")
    assert not out.exists() and leftovers(tmp_path) == []


def test_bad_encoder_settings(tmp_path: Path) -> None:
    for settings in ({"crf": 60}, {"preset": "superslow"}):
        with pytest.raises(NSTError, match="presets are"):
            open_writer(tmp_path / "out.mp4", 12, 64, 48, **settings)
    with pytest.raises(NSTError, match="fps"):
        open_writer(tmp_path / "out.gif", 60, 64, 48)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("content", "why"), [(b"", "the file is empty"), (b"\x00\x01junk" * 300, "not a video")])
def test_a_file_that_is_no_video_is_one_line_naming_it_once(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(NSTError) as info:
        open_video(path)
    message = str(info.value)
    assert message.startswith(f"cannot read video {path}: {why}") and message.count(str(path)) == 1
    assert "Errno" not in message and "\n" not in message
