"""How consistent and how faithful optimize.py's video methods are on a moving subject or a panning camera.

    python bench/video_consistency.py --clip runner --size 256 --iterations 100 --frames 8 --vgg hed16
    python bench/video_consistency.py --clip pan --size 96 --iterations 50 --frames 8

Clips (built in memory from two photos, ``--background`` and ``--skin``; the bundled cat photo by default):

* ``runner``: a figure running 3 % of the width per frame, arms and legs swinging, over a camera panning the
  other way (:func:`tests.clips.runner_clip`);
* ``pan``: the camera alone, panning and zooming in (:func:`tests.clips.panning_clip`).

Each method of ``--methods`` runs through :func:`nst.gatys.video.stylize_video` as optimize.py runs it
(defaults of ``conf/loss/gatys.yaml`` and ``conf/video/default.yaml``; ``--set key=value`` overrides a field of
:class:`~nst.gatys.video.VideoSettings` or a weight of the criterion). Printed per method and frame:

* **content change**: mean squared relu4_2 (block4_conv2) difference between output and input frame over the
  input's mean squared relu4_2 activation; ``subject``: the same restricted to the figure and 8 px around it;
* **saturated**: the fraction of pixels with a channel at 0 or 255;
* **E_warp** (Lai et al. 2018, :func:`nst.metrics.warping_error`) with Farneback flow, which no method used,
  and with DIS, the flow the methods optimised against; ratios against the first method (``naive``); for
  ``runner`` also split into the figure (8 px around it) and the rest of the frame, with Farneback flow;
* **E_warp, true motion** (``runner``): the same with the clip's exact flow (:func:`tests.clips.runner_true_flows`),
  which no method used and which has no estimator's error. Farneback and DIS miss the fast, textured figure by about
  a pixel, so with them even the input clip warps badly on the figure, and that error swamps the figure's score.

``--save DIR`` keeps every method's frames as PNG in ``DIR/<method>/``; ``--load DIR/<method>`` scores such
frames again without running the method (e.g. ``naive`` once, then each setting of ``consistent`` against it).

``--strip out.jpg`` writes input / methods, one row each, for the frames of ``--strip-frames``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nst.encoders.vgg import VGGFeatures  # noqa: E402
from nst.flow.cache import VideoFlows  # noqa: E402
from nst.flow.opencv import DISFlow, FarnebackFlow  # noqa: E402
from nst.gatys.loop import LoopSettings  # noqa: E402
from nst.gatys.video import VideoSettings, stylize_video  # noqa: E402
from nst.gatys.video_store import InputFrames, PassFolders  # noqa: E402
from nst.io.frames import FrameFolderWriter  # noqa: E402
from nst.io.image import load_image, save_image  # noqa: E402
from nst.io.video import open_video  # noqa: E402
from nst.losses import StyleTransferCriterion  # noqa: E402
from nst.metrics import flow_and_mask, frame_warping_error, warping_error  # noqa: E402
from tests.clips import (  # noqa: E402
    content_change,
    flows_warping_error,
    panning_clip,
    runner_clip,
    runner_true_flows,
    saturated_fraction,
)

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ["block4_conv2"]  # relu4_2
STYLE = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
WEIGHTS = {"content_weight": 1.0, "style_weight": 1e6, "tv_weight": 0.0, "temporal_weight": 1e2}  # conf/loss/gatys


def build_clip(args) -> tuple[list[torch.Tensor], list[torch.Tensor] | None, list | None]:
    """The frames (and for ``runner`` the subject's coverage and the true flows) at ``--size`` px wide, 2:3."""
    w = args.size
    h = round(w * 2 / 3)
    background = load_image(args.background, max_size=None)
    background = F.interpolate(background, size=(2 * h, 2 * w), mode="bilinear", antialias=True)
    if args.clip == "pan":
        return panning_clip(args.frames, h, w, (0.012 * w, 0.004 * w), 1.01, background), None, None
    skin = F.interpolate(load_image(args.skin, max_size=None), size=(h, w), mode="bilinear", antialias=True)
    step, pan = 0.03 * w, (-0.006 * w, 0.0)
    frames, alphas = runner_clip(args.frames, h, w, step, pan, 1.0, background, skin)
    return frames, alphas, runner_true_flows(alphas, step, pan, 1.0)


def run_method(method: str, folder: Path, crit, style, size, args, overrides) -> list[torch.Tensor]:
    inputs = InputFrames(open_video(folder / "clip"), folder / method / "input", size)
    fields = {"long_term": (1, 2, 4)}  # conf/video/default.yaml
    fields.update({k: v for k, v in overrides.items() if k in VideoSettings.__dataclass_fields__})
    video = VideoSettings(method, **fields)
    store = PassFolders(folder / method, inputs.count, video.pass_count)
    estimator = DISFlow(scale=args.flow_scale) if args.flow_scale != 1 else DISFlow()
    with VideoFlows(inputs.frame, estimator, folder / f"flow_{estimator.name}") as flows:
        stylize_video(inputs, crit, flows, store, settings=LoopSettings(args.iterations, patience=None),
                      video=video, style_images=[style])
    return list(store.output_frames())


def split_warping_error(outputs, regions, flows) -> tuple[float, float]:
    """Mean E_warp on the figure (``regions``) and on the rest of the frame, each on its own pixels, under
    ``flows`` ((flow, mask) per frame after the first: Farneback's with its reliability mask, or the true ones)."""
    inside, outside = [], []
    for t, (flow, mask) in enumerate(flows, 1):
        region = (regions[t] > 0.5).float()
        inside.append(float(frame_warping_error(outputs[t - 1], outputs[t], flow, mask * region)[0]))
        outside.append(float(frame_warping_error(outputs[t - 1], outputs[t], flow, mask * (1 - region))[0]))
    return sum(inside) / len(inside), sum(outside) / len(outside)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", choices=("runner", "pan"), default="runner")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--vgg", choices=("hed16", "random"), default="hed16")
    p.add_argument("--style", default=str(ROOT / "assets" / "styles" / "udnie.jpg"))
    p.add_argument("--background", default=str(ROOT / "assets" / "content" / "chelsea.jpg"))
    p.add_argument("--skin", default=str(ROOT / "assets" / "styles" / "composition_vii.jpg"))
    p.add_argument("--methods", nargs="*", default=["naive", "consistent"])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="VideoSettings fields or loss weights")
    p.add_argument("--strip", default=None, help="write input / method rows of --strip-frames to this image")
    p.add_argument("--strip-frames", type=int, nargs="+", default=[0, 3, 5, 7])
    p.add_argument("--flow-scale", type=float, default=1.0, help="DIS at this multiple of the working size (conf)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save", default=None, help="keep each method's frames as PNG in this folder")
    p.add_argument("--load", nargs="*", default=[], metavar="DIR",
                   help="score frames saved by --save (DIR/<method>) before the methods run")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: eval(v, {}) for k, v in (item.split("=", 1) for item in args.set)}  # noqa: S307 (bench flags)
    weights = {**WEIGHTS, **{k: v for k, v in overrides.items() if k in WEIGHTS}}
    if args.vgg == "hed16":
        encoder = VGGFeatures([*CONTENT, *STYLE], weights="hed", arch="vgg16")
    else:
        encoder = VGGFeatures([*CONTENT, *STYLE], weights="random", arch="vgg19")
        weights["style_weight"] = 1e9 if "style_weight" not in overrides else weights["style_weight"]
    crit = StyleTransferCriterion(encoder, CONTENT, STYLE, **weights)
    frames, alphas, true_flows = build_clip(args)
    size = tuple(frames[0].shape[-2:])
    style = load_image(args.style, max_size=max(size))
    regions = [F.max_pool2d(a, 17, 1, 8) for a in alphas] if alphas else None
    outputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with FrameFolderWriter(folder / "clip") as writer:
            for frame in frames:
                writer.write(frame)
        stored = InputFrames(open_video(folder / "clip"), folder / "input", size)
        frames = [stored.frame(i) for i in range(len(frames))]  # as the methods see them (8 bits)
        for saved in map(Path, args.load):
            outputs[f"{saved.name} ({saved})"] = [load_image(f, max_size=None) for f in sorted(saved.glob("*.png"))]
        for method in args.methods:
            outputs[method] = run_method(method, folder, crit, style, size, args, overrides)
            if args.save:
                Path(args.save, method).mkdir(parents=True, exist_ok=True)
                for i, frame in enumerate(outputs[method]):
                    save_image(frame, Path(args.save, method, f"{i:04d}.png"))
    print(f"clip {args.clip}, {len(frames)} frames at {size[1]}x{size[0]}, vgg {args.vgg}, {args.iterations} "
          f"iterations per frame, weights {weights}, overrides {overrides}")
    ref = {}
    e_in = warping_error(iter(frames), None, FarnebackFlow()).mean
    print(f"input: E_warp farneback {e_in:.3g} (the floor this flow allows)")
    if regions:
        farneback = [flow_and_mask(frames[t - 1], frames[t], FarnebackFlow()) for t in range(1, len(frames))]
        on, off = split_warping_error(frames, regions, farneback)
        print(f"  E_warp farneback on the figure {on:.3g}, elsewhere {off:.3g}")
        on, off = split_warping_error(frames, regions, true_flows)
        print(f"  E_warp true motion {flows_warping_error(frames, true_flows):.3g}: on the figure {on:.3g}, "
              f"elsewhere {off:.3g}")
    for method, outs in outputs.items():
        change = [content_change(encoder, o, x, None) for o, x in zip(outs, frames, strict=True)]
        sat = [saturated_fraction(o) for o in outs]
        e_far = warping_error(iter(frames), iter(outs), FarnebackFlow()).mean
        e_dis = warping_error(iter(frames), iter(outs), DISFlow()).mean
        ref.setdefault("far", e_far)
        ref.setdefault("dis", e_dis)
        print(f"\n{method}: E_warp farneback {e_far:.3g} ({e_far / ref['far']:.2f}x), dis {e_dis:.3g} "
              f"({e_dis / ref['dis']:.2f}x); saturated mean {sum(sat) / len(sat):.4f}")
        if regions:
            on, off = split_warping_error(outs, regions, farneback)
            print(f"  E_warp farneback on the figure {on:.3g}, elsewhere {off:.3g}")
            e_true = flows_warping_error(outs, true_flows)
            ref.setdefault("true", e_true)
            on, off = split_warping_error(outs, regions, true_flows)
            print(f"  E_warp true motion {e_true:.3g} ({e_true / ref['true']:.2f}x): on the figure {on:.3g}, "
                  f"elsewhere {off:.3g}")
        print("  content change ", " ".join(f"{c:.3f}" for c in change))
        if regions:
            subject = [content_change(encoder, o, x, r) for o, x, r in zip(outs, frames, regions, strict=True)]
            print("  subject change ", " ".join(f"{c:.3f}" for c in subject))
        print("  saturated      ", " ".join(f"{s:.4f}" for s in sat))
    if args.strip:
        rows = [frames, *outputs.values()]
        strip = torch.cat([torch.cat([row[i] for i in args.strip_frames], 3) for row in rows], 2)
        save_image(strip, args.strip)
        print(f"\nstrip: {args.strip} (rows: input, {', '.join(outputs)}; frames {args.strip_frames})")


if __name__ == "__main__":
    main()
