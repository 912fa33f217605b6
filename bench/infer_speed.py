"""Frames/s of infer.py's engine at 256x256, 512x512 and 1280x720: the model alone and file to file, beside a
textbook baseline measured in the same run.

    python bench/infer_speed.py [--sizes 256x256,512x512,1280x720] [--frames 4] [--repeat 2] [--batch 4]
                                [--engine auto] [--precision auto] [--compile] [--device auto]
                                [--weights weights/six_styles.pt --style udnie]

The network has random weights unless ``--weights`` names a file (the shipped one: its ``--style``, folded into a
plain network as infer.py does); the architecture, and so the speed, is the same.

Baseline: a plain TransformerNet forward in fp32, one frame at a time under ``torch.no_grad``, NCHW, as in
PyTorch's fast_neural_style example (``python neural_style.py eval``); it excludes decoding and encoding.
Ours, model alone: the engine that infer.py picks (``engine=auto``: ONNX Runtime on a CPU, PyTorch with batches,
autocast and channels_last on a GPU) on uint8 frames already in memory (on a GPU: host to device and back
included). Ours, file to file: a synthetic H.264 clip of ``--frames`` frames decoded, stylized and encoded
(crf 18, veryfast) by the threaded pipeline of nst.fastnet.infer.pipeline. Engine set-up (the ONNX export, or
torch.compile) is printed separately and not counted in frames/s.

Targets (issue #16): on a CPU, file to file at 720p >= 1.5x the baseline's bare-forward frames/s; on an H100,
>= 300 frames/s for the model alone and >= 100 frames/s file to file at 720p. Timings take the best of
``--repeat`` rounds, baseline and ours interleaved, so that load from other processes hits both alike.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from video_io_speed import synthetic_frames  # noqa: E402

from nst.app.device import resolve_device  # noqa: E402
from nst.fastnet.infer.engines import make_engine  # noqa: E402
from nst.fastnet.infer.pipeline import stylize_video  # noqa: E402
from nst.fastnet.transformer_net import TransformerNet  # noqa: E402
from nst.fastnet.weights import load_weights  # noqa: E402
from nst.io.video import open_video, open_writer  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def baseline_seconds(net: TransformerNet, frame: torch.Tensor) -> float:
    """One plain fp32 forward of one frame (seconds)."""
    _sync(frame.device)
    start = time.perf_counter()
    with torch.no_grad():
        net(frame)
    _sync(frame.device)
    return time.perf_counter() - start


def file_to_file_seconds(engine, clip: Path, out: Path, batch: int) -> tuple[float, int]:
    start = time.perf_counter()
    with open_video(clip) as reader, open_writer(out, reader.fps, reader.width, reader.height) as writer:
        frames = stylize_video(engine, reader, writer, batch)
    return time.perf_counter() - start, frames


def bench_size(args: argparse.Namespace, device: torch.device, width: int, height: int, tmp: Path) -> dict:
    torch.manual_seed(0)
    net = load_weights(args.weights).single_style(args.style) if args.weights else TransformerNet(args.upsample)
    net = net.eval()
    baseline_net = TransformerNet(**net.model_args).to(device).eval()
    baseline_net.load_state_dict(net.state_dict())
    frames = synthetic_frames(args.frames, width, height)
    clip = tmp / f"clip_{width}x{height}.mp4"
    with open_writer(clip, 25.0, width, height) as writer:
        for frame in frames:
            writer.write(frame)
    start = time.perf_counter()
    engine = make_engine(net, device, args.engine, args.precision, args.compile, args.batch, frames=None)
    batch = np.stack(frames[: args.batch] if len(frames) >= args.batch else frames)
    engine(batch)  # warm-up (and, for precision=auto or compile, the choice or the compilation)
    setup = time.perf_counter() - start
    x = torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float().div(255).to(device)
    baseline_seconds(baseline_net, x)  # warm-up
    base, alone, f2f = [], [], []
    for _ in range(args.repeat):
        base.append(baseline_seconds(baseline_net, x))
        _sync(device)
        start = time.perf_counter()
        engine(batch)
        _sync(device)
        alone.append((time.perf_counter() - start) / len(batch))
        seconds, count = file_to_file_seconds(engine, clip, tmp / "out.mp4", args.batch)
        f2f.append(seconds / count)
    return {"size": f"{width}x{height}", "baseline": 1 / min(base), "alone": 1 / min(alone),
            "file": 1 / min(f2f), "setup": setup, "engine": f"{engine.name} {engine.precision}"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256x256,512x512,1280x720")
    parser.add_argument("--frames", type=int, default=4, help="frames of each synthetic clip (file to file)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best is kept")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--upsample", default="deconv", choices=["deconv", "nearest"])
    parser.add_argument("--weights", default=None, help="a weights file (default: random weights)")
    parser.add_argument("--style", default=None, help="the style of a multi-style --weights file")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    weights = f"{args.weights} ({args.style or 'first style'})" if args.weights else f"{args.upsample}, random weights"
    print(f"torch {torch.__version__}, {name}, TransformerNet (32 channels, 5 residual blocks; {weights}), "
          f"batch {args.batch}, {args.frames} frames per clip, best of {args.repeat}")
    print(f"{'size':>10} {'baseline f/s':>13} {'model alone':>12} {'file to file':>13} {'file/base':>10} "
          f"{'setup s':>8}  engine")
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.lower().split("x"))
            r = bench_size(args, device, width, height, Path(folder))
            print(f"{r['size']:>10} {r['baseline']:>13.3f} {r['alone']:>12.3f} {r['file']:>13.3f} "
                  f"{r['file'] / r['baseline']:>9.2f}x {r['setup']:>8.1f}  {r['engine']}", flush=True)


if __name__ == "__main__":
    main()
