"""How well a shipped network paints: style and content on held-out photos, consistency on a real clip, size.

    python bench/shipped_networks.py [--weights weights/six_styles.pt] [--photos ../shared/data/photos]
                                     [--clip assets/video/sintel_mountain_2.mp4] [--size 256] [--frames 24]

For every style of the file, on the photos that training set aside for validation (``data.num_val`` images of
the photo folder, drawn with ``data.seed`` exactly as train.py's data module draws them), with the encoder the
network was trained with (``vgg=hed16`` features unless ``--vgg`` says otherwise):

* **style ratio**: the Gram distance (relu1_1..relu5_1, nst.metrics) of the stylized photo to the painting,
  over the photo's own Gram distance to it; target at most 0.5;
* **content change**: the relu4_2 change of the stylized photo over the photo's own relu4_2 energy (mean square);
  target below 1 (the content stays recognisable);
* **E_warp ratio**: for every style, on the clip (not in the training data), E_warp of the stylized frames over the
  input's own, with Farneback flows; target at most 1.3.

The baseline of each ratio is the input measured in the same run: the photo for the style and content, the
clip for E_warp. Speed is ``bench/infer_speed.py --weights ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nst.fastnet.data import StyleDataModule  # noqa: E402
from nst.fastnet.weights import load_exported, read_meta  # noqa: E402
from nst.flow.opencv import FarnebackFlow  # noqa: E402
from nst.io.image import load_style_images  # noqa: E402
from nst.io.video import open_video  # noqa: E402
from nst.metrics import metric_criterion, style_content_distance, warping_error  # noqa: E402


def held_out_photos(folder: Path, size: int, num_val: int, seed: int) -> torch.Tensor:
    """The validation photos of a ``data=folder`` run: the same seeded draw, scaled and centre-cropped."""
    data = StyleDataModule(source="folder", root=str(folder), image_size=size, batch_size=1, num_val=num_val,
                           num_workers=0, seed=seed)  # fmt: skip
    data.setup("fit")
    return data.val_images()


def relu42_energy(criterion, image: torch.Tensor) -> float:  # noqa: ANN001 - nst.metrics' criterion
    feats = criterion.encoder(image, layers=["relu4_2"])["relu4_2"]
    return float(feats.float().pow(2).mean())


@torch.no_grad()
def style_scores(net, photos: torch.Tensor, vgg: str) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """Per style: the mean style ratio and content change over the held-out photos."""
    criterion = metric_criterion(vgg)
    scores = {}
    for name in net.styles or ["style"]:
        painting = ROOT / "assets" / "styles" / f"{name}.jpg"
        criterion.set_style(load_style_images([painting], max(photos.shape[-2:]))[0])
        painted = net.single_style(name if net.styles else None)
        ratios, changes = [], []
        for photo in photos.split(1):
            out = painted(photo).float().clamp(0, 1)
            own_style = style_content_distance(photo, photo, criterion)[0]
            style, content = style_content_distance(out, photo, criterion)
            ratios.append(style / own_style)
            changes.append(content / relu42_energy(criterion, photo))
        scores[name] = {"style_ratio": sum(ratios) / len(ratios), "content_change": sum(changes) / len(changes)}
        print(f"{name:<20} style ratio {scores[name]['style_ratio']:.3f}   content change "
              f"{scores[name]['content_change']:.3f}", flush=True)  # fmt: skip
    return scores


@torch.no_grad()
def consistency(net, clip: Path, size: int, frames: int) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """Per style: E_warp of the stylized clip over the clip's own (Farneback flows)."""
    with open_video(clip, max_frames=frames) as reader:
        inputs = [frame for frame in reader]
    scale = size / max(inputs[0].shape[-2:])
    hw = [round(s * scale) for s in inputs[0].shape[-2:]]
    inputs = [torch.nn.functional.interpolate(f, size=hw, mode="bilinear", antialias=True).clamp(0, 1) for f in inputs]
    e_in = warping_error(inputs, estimator=FarnebackFlow()).mean
    print(f"E_warp at {hw[1]}x{hw[0]}, {len(inputs)} frames, farneback: input {e_in:.3e}", flush=True)
    scores = {}
    for name in net.styles or [None]:
        painted = net.single_style(name)
        outputs = [painted(f).float().clamp(0, 1) for f in inputs]
        e_out = warping_error(inputs, outputs, estimator=FarnebackFlow()).mean
        scores[name or "style"] = {"warp_error_input": e_in, "warp_error_output": e_out, "ratio": e_out / e_in}
        print(f"{name or 'style':<20} E_warp {e_out:.3e}, ratio {e_out / e_in:.2f}", flush=True)
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "weights" / "six_styles.pt"))
    parser.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "photos"))
    parser.add_argument("--num-val", type=int, default=8, help="data.num_val of the training run")
    parser.add_argument("--seed", type=int, default=0, help="data.seed of the training run")
    parser.add_argument("--photo-size", type=int, default=256)
    parser.add_argument("--clip", default=str(ROOT / "assets" / "video" / "sintel_mountain_2.mp4"))
    parser.add_argument("--size", type=int, default=256, help="long side of the clip's frames")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--vgg", default="vgg16:hed", help="the encoder of the distances, arch:weights")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = load_exported(args.weights)
    size_mb = Path(args.weights).stat().st_size / 1e6
    styles = ", ".join(net.styles) or "(one)"
    print(f"{args.weights}: {size_mb:.1f} MB, styles {styles}; meta {read_meta(args.weights)}")
    photos = held_out_photos(Path(args.photos), args.photo_size, args.num_val, args.seed)
    print(f"{len(photos)} held-out photos at {args.photo_size} px; encoder {args.vgg}", flush=True)
    report = {"size_mb": size_mb, "styles": style_scores(net, photos, args.vgg),
              "consistency": consistency(net, Path(args.clip), args.size, args.frames)}  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
