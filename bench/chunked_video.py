"""A video in chunks on local workers against one process: wall time, and E_warp at the seams against inside.

    python bench/chunked_video.py [--size 192] [--iterations 40] [--chunks 2] [--overlap 8] [--out /tmp/nst_chunks]

Runs ``optimize.py`` twice on the same clip (default: the bundled Sintel clip, camera motion, 30 frames) with
``vgg=hed16`` (pretrained, no download), the consistent method: once as one process, once with ``video.chunks`` and
``hydra/launcher=submitit_local`` (the chunks in parallel). Then measures, with Farneback flow on the input (not
the DIS flow the temporal loss used), each frame step's E_warp of: the one-process output, the stitched output
(linear fade across each overlap), and a hard cut (chunk k up to the middle of the overlap, k+1 after it).
Seam = the steps touching a fade (or the cut); inside = all other steps. Writes ``<out>/seam.png``: the frames
around the first seam, rows chunk k alone, chunk k+1 alone, stitched, hard cut.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nst.flow.opencv import FarnebackFlow  # noqa: E402
from nst.gatys.video_chunks import plan_chunks, seam_steps, seam_summary  # noqa: E402
from nst.gatys.video_store import read_frame  # noqa: E402
from nst.io.frames import finished_frames  # noqa: E402
from nst.io.image import save_image  # noqa: E402
from nst.metrics import flow_and_mask, frame_warping_error  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(args: argparse.Namespace, folder: Path, *extra: str) -> float:
    """optimize.py on the clip into ``folder``; its wall time in seconds."""
    cmd = [sys.executable, str(ROOT / "optimize.py"), f"content={args.content}", f"max_size={args.size}",
           f"iterations={args.iterations}", "vgg=hed16", "logger=none", "video.method=consistent",
           f"hydra.run.dir={folder}", *extra]
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def frames(folder: Path) -> list[torch.Tensor]:
    return [read_frame(p) for p in finished_frames(folder)]


def step_errors(inputs: list[torch.Tensor], outputs: list[torch.Tensor]) -> list[float]:
    """E_warp of each step t -> t+1 (Farneback flow and reliability mask from the input frames)."""
    estimator, errors = FarnebackFlow(), []
    for t in range(len(inputs) - 1):
        flow, mask = flow_and_mask(inputs[t], inputs[t + 1], estimator)
        errors.append(float(frame_warping_error(outputs[t], outputs[t + 1], flow, mask)[0]))
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", default=str(ROOT / "assets/video/sintel_mountain_2.mp4"))
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--overlap", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("/tmp/nst_chunks"))
    args = parser.parse_args()
    single, chunked = args.out / "single", args.out / "chunked"
    wall_single = run(args, single)
    wall_chunked = run(args, chunked, f"video.chunks={args.chunks}", f"video.overlap={args.overlap}",
                       "hydra/launcher=submitit_local")

    inputs = frames(chunked / "input")
    n = len(inputs)
    spans = plan_chunks(n, args.chunks, args.overlap)
    parts = [frames(chunked / "chunks" / str(k) / "frames") for k in range(args.chunks)]
    cut = []  # hard cut: chunk k up to the middle of its overlap with k+1
    for k, (a, b) in enumerate(spans):
        first = a if k == 0 else (a + spans[k - 1][1] + 1) // 2
        last = b if k == len(spans) - 1 else (spans[k + 1][0] + b + 1) // 2
        cut += parts[k][first - a : last - a]
    cut_steps = [((spans[k + 1][0] + spans[k][1] + 1) // 2) - 1 for k in range(args.chunks - 1)]
    outputs = {"one process": frames(single / "frames"), "chunks, fade": frames(chunked / "frames"),
               "chunks, hard cut": cut}
    print(f"{n} frames of {Path(args.content).name} at long side {args.size}, {args.iterations} iterations, vgg=hed16, "
          f"consistent; chunks {spans}; E_warp with Farneback flow")
    print(f"wall time: one process {wall_single:.0f} s, {args.chunks} chunks on submitit_local {wall_chunked:.0f} s "
          f"(x{wall_single / wall_chunked:.2f})")
    print(f"{'output':<18}{'E_warp mean':>12}{'seam mean':>12}{'seam max':>12}{'inside':>12}{'seam/inside':>12}")
    report = {"wall_single_s": wall_single, "wall_chunked_s": wall_chunked, "spans": spans}
    for name, out in outputs.items():
        errors = step_errors(inputs, out)
        s = seam_summary(errors, spans)
        if name == "chunks, hard cut":  # the seam is the cut alone; the fade steps around it are inside chunks
            s = {"seam_warp_error_max": max(errors[j] for j in cut_steps),
                 "seam_warp_error": sum(errors[j] for j in cut_steps) / len(cut_steps),
                 "seam_inside_warp_error": sum(e for j, e in enumerate(errors) if j not in cut_steps)
                 / (len(errors) - len(cut_steps))}
            s["seam_ratio"] = s["seam_warp_error"] / s["seam_inside_warp_error"]
        report[name] = {**s, "mean": sum(errors) / len(errors), "per_step": errors}
        print(f"{name:<18}{report[name]['mean']:>12.4g}{s['seam_warp_error']:>12.4g}{s['seam_warp_error_max']:>12.4g}"
              f"{s['seam_inside_warp_error']:>12.4g}{s['seam_ratio']:>12.2f}")
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")

    steps = seam_steps(spans[:2])  # the first seam: the frames from chunk 0 alone to chunk 1 alone
    shown = range(steps[0], steps[-1] + 2)
    a0, a1 = spans[0][0], spans[1][0]
    blank = torch.ones_like(inputs[0])
    rows = [[parts[0][t - a0] if t < spans[0][1] else blank for t in shown],
            [parts[1][t - a1] if t >= a1 else blank for t in shown],
            [outputs["chunks, fade"][t] for t in shown], [cut[t] for t in shown]]
    grid = torch.cat([torch.cat([torch.nn.functional.pad(f, (2, 2, 2, 2), value=1.0) for f in row], dim=-1)
                      for row in rows], dim=-2)
    save_image(grid, args.out / "seam.png")
    print(f"wrote {args.out / 'seam.png'} (frames {shown.start}-{shown.stop - 1}; rows: chunk 0, chunk 1, fade, cut) "
          f"and {args.out / 'report.json'}")


if __name__ == "__main__":
    main()
