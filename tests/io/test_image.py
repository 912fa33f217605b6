"""Image I/O: modes, EXIF orientation, sizes, clear errors, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst.errors import NSTError
from nst.io.image import load_image, load_input, load_style_images, save_image


def test_rgb_round_trip_and_resize(tmp_path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (36, 60, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png", min_side=None)
    assert image.shape == (1, 3, 36, 60) and image.dtype == torch.float32
    assert torch.equal((image[0].permute(1, 2, 0) * 255).round().byte(), torch.from_numpy(arr))
    resized = load_image(tmp_path / "a.png", max_size=100)
    assert resized.shape == (1, 3, 60, 100), "long side scaled to max_size, aspect kept"


def test_exif_orientation_is_applied(tmp_path) -> None:
    img = Image.new("RGB", (60, 40), (255, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").shape == (1, 3, 60, 40)


@pytest.mark.parametrize(
    "mode,value,expected",
    [
        ("L", 128, (128, 128, 128)),
        ("LA", (128, 255), (128, 128, 128)),
        ("RGBA", (255, 0, 0, 0), (255, 255, 255)),  # fully transparent -> white background
        ("RGBA", (0, 0, 255, 255), (0, 0, 255)),
        ("I;16", 65535, (255, 255, 255)),
        ("I;16", 32896, (128, 128, 128)),  # 16-bit mid grey is rescaled, not clipped
        ("1", 1, (255, 255, 255)),
    ],
)
def test_odd_modes_are_converted(tmp_path, mode, value, expected) -> None:
    Image.new(mode, (40, 36), value).save(tmp_path / "odd.png")
    image = load_image(tmp_path / "odd.png")
    assert image.shape == (1, 3, 36, 40)
    assert (image[0, :, 0, 0] * 255).round().tolist() == list(expected)


def test_palette_image(tmp_path) -> None:
    Image.new("RGB", (40, 40), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.gif")
    pixel = (load_image(tmp_path / "p.gif")[0, :, 5, 5] * 255).round().tolist()
    assert pixel == [10, 200, 30]


def test_missing_corrupt_and_tiny_files_are_clear_errors(tmp_path) -> None:
    with pytest.raises(NSTError, match="image not found: .*nope.jpg"):
        load_image(tmp_path / "nope.jpg")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(NSTError, match="cannot read image .*corrupt.jpg"):
        load_image(tmp_path / "corrupt.jpg")
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(NSTError, match=r"dot\.png is 1x1: .*at least 32 px"):
        load_image(tmp_path / "dot.png", max_size=512)  # refused before upscaling
    Image.new("RGB", (400, 40)).save(tmp_path / "strip.png")
    with pytest.raises(NSTError, match=r"strip\.png is 256x26 after scaling its long side to 256 px.*max_size"):
        load_image(tmp_path / "strip.png", max_size=256)


def test_save_is_atomic_and_leaves_nothing_on_failure(tmp_path, monkeypatch) -> None:
    image = torch.rand(1, 3, 20, 24)
    out = save_image(image, tmp_path / "sub" / "out.png")
    assert out.exists() and load_image(out, min_side=None).shape == (1, 3, 20, 24)
    before = out.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError):
        save_image(torch.rand(1, 3, 20, 24), out)
    with pytest.raises(OSError):
        save_image(image, tmp_path / "new.png")
    assert out.read_bytes() == before, "a failed write keeps the old file intact"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["out.png"]


def test_save_needs_an_image_suffix(tmp_path) -> None:
    with pytest.raises(NSTError, match="no image suffix"):
        save_image(torch.rand(1, 3, 8, 8), tmp_path / "out.txt")


def _save(path: Path, img: Image.Image) -> Path:
    img.save(path)
    return path


def test_load_input_names_the_input_in_errors(tmp_path: Path) -> None:
    with pytest.raises(NSTError, match=r"^style: image not found: .*nope\.png$"):
        load_input(tmp_path / "nope.png", 64, "style")
    with pytest.raises(NSTError, match=r"^content: image .*tiny\.png is 1x1.*32 px"):  # refused before upscaling
        load_input(_save(tmp_path / "tiny.png", Image.new("RGB", (1, 1))), 512, "content")


def test_content_max_size_is_an_upper_limit(tmp_path: Path) -> None:
    """Gatys et al. 2016 scale large photos down to max_size; small ones are never scaled up."""
    chelsea = Path(__file__).resolve().parents[2] / "assets" / "content" / "chelsea.jpg"  # 451x300
    assert load_input(chelsea, 512, "content").shape == (1, 3, 300, 451)
    assert load_input(chelsea, 128, "content").shape == (1, 3, 85, 128)
    assert load_input(chelsea, None, "content").shape == (1, 3, 300, 451)


def test_style_images_are_scaled_to_their_own_size_up_or_down(tmp_path: Path) -> None:
    small = _save(tmp_path / "small.png", Image.new("RGB", (60, 40), (9, 9, 9)))
    large = _save(tmp_path / "large.png", Image.new("RGB", (300, 200), (9, 9, 9)))
    up, down = load_style_images([small, large], 96)
    assert up.shape == (1, 3, 64, 96) and down.shape == (1, 3, 64, 96)
    (own,) = load_style_images([small], None)
    assert own.shape == (1, 3, 40, 60)
    flat = _save(tmp_path / "flat.png", Image.new("RGB", (300, 60)))
    with pytest.raises(NSTError, match=r"^style: image .*flat\.png is 96x19 after scaling .*style\.size"):
        load_style_images([flat], 96)


def test_fit_long_side_is_height_width_and_keeps_the_aspect() -> None:
    from nst.io.image import fit_long_side

    assert fit_long_side(480, 640, 320) == (240, 320)
    assert fit_long_side(640, 480, 320) == (320, 240)  # (H, W) in, (H, W) out, whichever side is long
    assert fit_long_side(48, 64, 128) == (96, 128) and fit_long_side(48, 64, 128, upscale=False) == (48, 64)
    assert fit_long_side(1, 1000, 10) == (1, 10) and fit_long_side(48, 64, None) == (48, 64)
