"""Optical flow at 512 px: milliseconds per frame pair, and the share of a naive optimizer frame's time it takes.

    python bench/flow_speed.py [--frames 8] [--iters 3] [--threads N] [--raft]

Frames: the bundled Sintel clip (512x218, long side 512). Estimators: DIS (medium, the default; fast;
ultrafast) and Farneback; ``--raft`` adds torchvision's RAFT small and large with random weights (speed does
not depend on the weights; no download), on the GPU when there is one.

A "naive optimizer frame" is 100 L-BFGS iterations (loss evaluations) of the Gatys loop at the same size:
VGG-19 (random weights) content + style criterion, forward and backward. On a CPU that takes minutes, so
``--iters`` iterations are measured and the time per iteration is scaled to 100; the output says so. A video
frame with a masked temporal term needs two flows (the backward flow and the opposite one for the mask).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nst.encoders.vgg import VGGFeatures  # noqa: E402
from nst.flow import FlowEstimator  # noqa: E402
from nst.flow.opencv import DISFlow, FarnebackFlow  # noqa: E402
from nst.io.video import open_video  # noqa: E402
from nst.losses import StyleTransferCriterion  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "assets" / "video" / "sintel_mountain_2.mp4"
GATYS_CONTENT = ["block4_conv2"]
GATYS_STYLE = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
ITERATIONS_PER_FRAME = 100
FLOWS_PER_FRAME = 2


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def ms_per_pair(estimator: FlowEstimator, frames: list[torch.Tensor]) -> float:
    """Median milliseconds of ``estimator(frame_t, frame_{t-1})`` over consecutive pairs, after one warm-up."""
    estimator(frames[1], frames[0])
    times = []
    for t in range(1, len(frames)):
        _sync()
        start = time.perf_counter()
        estimator(frames[t], frames[t - 1])
        _sync()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def seconds_per_iteration(frame: torch.Tensor, iters: int) -> float:
    """Seconds per L-BFGS iteration (one loss evaluation) of the Gatys loop on ``frame``, VGG random."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = VGGFeatures([*GATYS_CONTENT, *GATYS_STYLE], weights="random")
        criterion = StyleTransferCriterion(encoder, GATYS_CONTENT, GATYS_STYLE).to(device)
    frame = frame.to(device)
    criterion.set_style(frame.flip(-1))
    targets = criterion.content_targets(frame)
    image = frame.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([image], lr=1, max_iter=iters, history_size=100, tolerance_grad=0, tolerance_change=0)
    calls: list[float] = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = criterion(image, targets)["total"]
        loss.backward()
        _sync()
        calls.append(time.perf_counter())
        return loss

    closure()  # warm-up
    start = time.perf_counter()
    calls.clear()
    opt.step(closure)
    return (calls[-1] - start) / len(calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="frames of the clip (pairs = frames - 1)")
    parser.add_argument("--iters", type=int, default=3, help="L-BFGS iterations measured for the optimizer frame")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--raft", action="store_true", help="also time RAFT small/large (random weights)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with open_video(CLIP, max_frames=max(2, args.frames)) as video:
        frames = list(video)
    h, w = frames[0].shape[-2:]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"{len(frames)} frames {w}x{h} of {CLIP.name}; torch threads {torch.get_num_threads()}; device {device}")

    estimators: list[tuple[str, Callable[[], FlowEstimator]]] = [
        ("DIS medium (default)", DISFlow), ("DIS fast", lambda: DISFlow("fast")),
        ("DIS ultrafast", lambda: DISFlow("ultrafast")), ("Farneback", FarnebackFlow),
    ]
    if args.raft:
        from nst.flow.raft import RAFTFlow

        estimators += [("RAFT small (random w.)", lambda: RAFTFlow("small", weights="random")),
                       ("RAFT large (random w.)", lambda: RAFTFlow("large", weights="random"))]
    results = {name: ms_per_pair(build(), frames) for name, build in estimators}

    per_iter = seconds_per_iteration(frames[0], args.iters)
    frame_s = per_iter * ITERATIONS_PER_FRAME
    print(f"naive optimizer frame: {per_iter:.3f} s/iteration measured over {args.iters} L-BFGS iterations, "
          f"scaled to {ITERATIONS_PER_FRAME} iterations = {frame_s:.1f} s (an estimate, not a full run)")
    print(f"{'estimator':<24}{'ms/pair':>10}{'share of a frame (' + str(FLOWS_PER_FRAME) + ' flows)':>32}")
    for name, ms in results.items():
        flow_s = FLOWS_PER_FRAME * ms / 1000
        print(f"{name:<24}{ms:>10.1f}{100 * flow_s / (frame_s + flow_s):>31.2g}%")


if __name__ == "__main__":
    main()
