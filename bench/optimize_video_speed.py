"""Seconds per video frame of optimize.py's methods, against a plain per-frame loop measured in the same run.

    python bench/optimize_video_speed.py [--size 256] [--iterations 100] [--frames 3] [--device auto]
    python bench/optimize_video_speed.py --size 512 --iterations 300 --frames 4 --device cuda   # the GPU target

Frames: the bundled Sintel clip, long side ``--size``. Criterion: VGG-19 with random weights (speed does not
depend on the weights; no download), Gatys' layers, L-BFGS, no early stop. Rows:

* ``baseline``: each frame from its content image through the shared loop, no flow at all (textbook Gatys);
* ``naive``, ``temporal``, ``consistent`` (long-term [1, 2], one pass): :func:`nst.gatys.video.stylize_video`
  as optimize.py runs it, flows by DIS in the background worker, cached in a temporary run folder. Every
  method also logs a per-frame E_warp, so even ``naive`` asks for flows.

Times are per frame after the first (the first frame gets the same budget here, and has no temporal term);
``flow wait`` is the share of those seconds the loop spent waiting for a flow or a mask. Targets (issue 15):
temporal <= 1.15x naive, consistent <= 1.35x naive, flow computed ahead (wait near 0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nst.encoders.vgg import VGGFeatures  # noqa: E402
from nst.flow.cache import VideoFlows  # noqa: E402
from nst.flow.opencv import DISFlow  # noqa: E402
from nst.gatys.loop import LoopSettings, PixelOptimizer  # noqa: E402
from nst.gatys.video import VideoSettings, stylize_video  # noqa: E402
from nst.gatys.video_store import InputFrames, PassFolders, working_size  # noqa: E402
from nst.io.image import load_input  # noqa: E402
from nst.io.video import open_video  # noqa: E402
from nst.losses import StyleTransferCriterion  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "assets" / "video" / "sintel_mountain_2.mp4"
CONTENT = ["block4_conv2"]
STYLE = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]


def criterion(encoder: VGGFeatures, style: torch.Tensor) -> StyleTransferCriterion:
    crit = StyleTransferCriterion(encoder, CONTENT, STYLE, style_weight=1e9, temporal_weight=1e4)
    crit.to(memory_format=torch.channels_last)
    crit.set_style([style])
    return crit


def baseline(frames: list[torch.Tensor], crit: StyleTransferCriterion, settings: LoopSettings) -> list[float]:
    """Seconds of each frame optimised on its own from its content image, without any flow."""
    times = []
    for frame in frames:
        start = time.perf_counter()
        content = frame.to(crit.device)
        targets = crit.content_targets(content)
        image, *_ = PixelOptimizer(settings).run(content, lambda x, t=targets: crit(x, t))
        _ = image.sum().item()  # waits for the device
        times.append(time.perf_counter() - start)
    return times


def method(name: str, frames: int, size: tuple[int, int], crit, settings, style, device) -> tuple[list[float], float]:
    """Per-frame seconds of one method through stylize_video, and the share of them spent waiting for flow."""
    video = VideoSettings(name, settings.iterations, (1, 2), 1)
    with tempfile.TemporaryDirectory(prefix="nst-bench-") as tmp:
        inputs = InputFrames(open_video(CLIP, max_frames=frames), Path(tmp) / "input", size)
        store = PassFolders(tmp, inputs.count, 1)
        inputs.frame(inputs.count - 1)  # decoding is not what is measured
        with VideoFlows(inputs.frame, DISFlow(), Path(tmp) / "flow", device) as flows:
            result = stylize_video(inputs, crit, flows, store, settings=settings, video=video, style_images=[style])
    later = result.records[1:]
    return [r.seconds for r in later], sum(r.flow_wait for r in later) / sum(r.seconds for r in later)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--frames", type=int, default=3, help="frames per method (the first is not timed)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    warnings.filterwarnings("ignore", message="vgg.weights=random")
    with open_video(CLIP) as reader:
        size = working_size(reader.width, reader.height, args.size)
    style = load_input(ROOT / "assets" / "styles" / "udnie.jpg", args.size)
    encoder = VGGFeatures([*CONTENT, *STYLE], weights="random").to(device)
    crit = criterion(encoder, style.to(device))
    settings = LoopSettings(iterations=args.iterations, patience=None)
    inputs = InputFrames(open_video(CLIP, max_frames=args.frames), Path(tempfile.mkdtemp()) / "input", size)
    frames = [inputs.frame(i) for i in range(inputs.count)]
    print(f"{CLIP.name}: {args.frames} frames at {size[1]}x{size[0]}, {args.iterations} L-BFGS iterations per frame, "
          f"{device} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    baseline(frames[:1], crit, settings)  # warm-up
    base = baseline(frames[1:], crit, settings)
    reference = sum(base) / len(base)
    rows = [("baseline (no flow)", reference, None)]
    for name in ("naive", "temporal", "consistent"):
        times, wait = method(name, args.frames, size, crit, settings, style, device)
        rows.append((name, sum(times) / len(times), wait))
    naive = rows[1][1]
    print(f"{'method':<22}{'s/frame':>10}{'x baseline':>12}{'x naive':>10}{'flow wait':>11}")
    for name, seconds, wait in rows:
        shown = "" if wait is None else f"{100 * wait:.1f} %"
        print(f"{name:<22}{seconds:>10.3f}{seconds / reference:>12.2f}{seconds / naive:>10.2f}{shown:>11}")


if __name__ == "__main__":
    main()
