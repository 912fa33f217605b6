"""The README's pictures of the shipped networks, remade from the weights file in one command.

    python docs/make_media.py [--weights weights/six_styles.pt]

* ``assets/gallery/shipped.jpg``: the bundled photo and each style of the file (plus one blend), labelled;
* ``assets/gallery/sintel.gif``: the bundled Sintel clip beside two of its styles, looping, muted.

Both are what ``python infer.py`` computes (the same network, float32 on the CPU); nothing is retouched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nst.fastnet.weights import load_weights  # noqa: E402
from nst.io.image import load_image, tensor_to_pil  # noqa: E402
from nst.io.video import open_video  # noqa: E402


def label(img: Image.Image, text: str) -> Image.Image:
    """``img`` with ``text`` on a dark band at its top left."""
    img = img.copy()
    draw = ImageDraw.Draw(img)
    box = draw.textbbox((0, 0), text)
    draw.rectangle((0, 0, box[2] + 8, box[3] + 6), fill=(0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255))
    return img


def grid(tiles: list[Image.Image], columns: int, gap: int = 4) -> Image.Image:
    """Equal-sized tiles in rows of ``columns``, on white."""
    w, h = tiles[0].size
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * w + (columns - 1) * gap, rows * h + (rows - 1) * gap), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * (w + gap), (i // columns) * (h + gap)))
    return sheet


@torch.inference_mode()
def gallery(net, photo: Path, out: Path, blend: dict[str, float]) -> Path:  # noqa: ANN001 - a TransformerNet
    """The photo, then every style, then ``blend``, as a labelled 4-column grid."""
    x = load_image(photo)
    tiles = [label(tensor_to_pil(x), "photo")]
    for name in net.styles:
        tiles.append(label(tensor_to_pil(net(x, style=name)), name))
    mixed = " + ".join(f"{w:g} {n}" for n, w in blend.items())
    tiles.append(label(tensor_to_pil(net(x, style=blend)), mixed))
    grid(tiles, 4).save(out, quality=88)
    return out


@torch.inference_mode()
def clip_gif(net, clip: Path, out: Path, styles: list[str], width: int) -> Path:  # noqa: ANN001
    """The clip beside its stylized frames in ``styles``, ``width`` px per column, as a looping GIF."""
    frames, fps = [], 24.0
    with open_video(clip) as reader:
        fps = reader.fps or fps
        for array in reader.arrays():
            x = torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 255
            columns = [label(tensor_to_pil(x), "input")]
            columns += [label(tensor_to_pil(net(x, style=name)), name) for name in styles]
            sheet = grid([c.resize((width, round(width * c.height / c.width)), Image.LANCZOS) for c in columns],
                         len(columns))
            frames.append(sheet.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0, optimize=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "weights" / "six_styles.pt"))
    parser.add_argument("--photo", default=str(ROOT / "assets" / "content" / "chelsea.jpg"))
    parser.add_argument("--clip", default=str(ROOT / "assets" / "video" / "sintel_mountain_2.mp4"))
    parser.add_argument("--gif-styles", default="udnie,composition_vii")
    parser.add_argument("--gif-width", type=int, default=288, help="px per column of the GIF")
    parser.add_argument("--out", default=str(ROOT / "assets" / "gallery"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    net = load_weights(args.weights).eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    blend = {net.styles[0]: 0.5, net.styles[2]: 0.5}
    for path in (gallery(net, Path(args.photo), out / "shipped.jpg", blend),
                 clip_gif(net, Path(args.clip), out / "sintel.gif", args.gif_styles.split(","), args.gif_width)):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
