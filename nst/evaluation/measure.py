"""The one measurement of a stylized video: its command, its table and its metrics.json (one schema).

``python -m nst.evaluation.measure input=clip.mp4 output=stylized.mp4 style.image=painting.jpg`` (the old
``python -m nst.metrics ...`` still works). optimize.py's videos, ``infer.py metrics=true`` and evaluate.py measure
through :func:`measure` or :func:`record`, print :func:`print_table` and write :func:`write_json`; the numbers are
:mod:`nst.metrics`'s (definitions pinned there).

The record (one per video; metrics.json holds one, infer.py's a ``{output: record}`` map of every video it wrote):
``input``, ``output``, ``frames``, ``width``, ``height``, ``flow``, ``encoder``, ``style_image``, ``style_blend``,
the means ``warp_error_input``, ``warp_error_output``, ``warp_error_ratio``, ``style_distance``,
``content_distance`` (null when not measured), ``per_frame`` (the same four scores per frame) and ``definition``;
a command adds its own keys after them (optimize.py: ``method``, ``seconds_per_frame``, ``flow_wait_share``; with
``video.chunks``, the seams' ``seam_warp_error``, ``seam_warp_error_max``, ``seam_inside_warp_error``, ``seam_ratio``).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nst.errors import NSTError
from nst.flow.named import build_estimator
from nst.flow.opencv import DISFlow
from nst.io.files import atomic_path
from nst.io.image import fit_long_side, load_style_images
from nst.io.video import open_video
from nst.metrics import FrameScores, VideoMetrics, evaluate_video, metric_criterion, warping_error

# Required: input, output, style.image (a blend: [a.jpg,b.jpg] with style.blend=[w1,w2]); vgg.arch (default vgg16
# for hed, else vgg19), vgg.weights (imagenet|random|hed|PATH), flow (dis|farneback|raft), flow.weights (raft:
# DEFAULT|PATH), max_size (long side; default the output's), max_frames, json (default: metrics.json by the output).
KEYS = ("input", "output", "style.image", "style.blend", "vgg.arch", "vgg.weights", "flow", "flow.weights",
        "max_size", "max_frames", "json")
COMMAND = "python -m nst.metrics"
TABLE = (("E_warp input", "warp_error_input"), ("E_warp output", "warp_error_output"),
         ("E_warp output/input", "warp_error_ratio"), ("style distance", "style_distance"),
         ("content distance", "content_distance"))
DEFINITION = ("E_warp = mean_t sum(M*(O_t - W(O_t-1))^2) / (3*sum M), RGB in [0,1], {flow} flow on the input, "
              "M = fw-bw check + motion boundaries + out of frame (Ruder 2016); see nst/metrics.py")


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def record(
    input: object, output: object, *, frames: int, size: tuple[int, int], flow: str, encoder: str | None = None,
    style_image: object = None, style_blend: object = None, metrics: VideoMetrics | None = None,
    warp: tuple[FrameScores, FrameScores] | None = None, **extra: Any,
) -> dict[str, Any]:
    """The metrics.json record of one video: every metric of ``metrics``, or E_warp alone from ``warp``
    (input's, output's scores); nothing measured (a one-frame video) gives nulls."""
    scores: dict[str, FrameScores | None] = dict.fromkeys(("warp_error_input", "warp_error_output",
                                                          "style_distance", "content_distance"))
    if metrics is not None:
        scores |= vars(metrics)
    elif warp is not None:
        scores |= {"warp_error_input": warp[0], "warp_error_output": warp[1]}
    e_in, e_out = scores["warp_error_input"], scores["warp_error_output"]
    ratio = e_out.mean / e_in.mean if e_in is not None and e_out is not None and e_in.mean > 0 else None
    return {
        "input": str(input), "output": str(output), "frames": frames, "width": size[1], "height": size[0],
        "flow": flow, "encoder": encoder, "style_image": None if style_image is None else str(style_image),
        "style_blend": style_blend,
        **{key: None if s is None else _number(s.mean) for key, s in scores.items()},
        "warp_error_ratio": _number(ratio),
        "per_frame": {key: None if s is None else list(s.per_frame) for key, s in scores.items()},
        "definition": DEFINITION.format(flow=flow), **extra,
    }


def print_table(report: dict[str, Any], title: str | None = None, more: Sequence[tuple[str, str]] = ()) -> None:
    """The table of one record: a title line (frames, size, flow, encoder), then one line per measured metric;
    ``more``: (label, key) rows of a command's own keys after them (a chunked optimize.py run's seams)."""
    encoder = f", encoder {report['encoder']}" if report.get("encoder") else ""
    head = f"{report['frames']} frames at {report['width']}x{report['height']}, flow {report['flow']}{encoder}"
    print(f"{title}: {head}" if title else head, flush=True)
    for label, key in (*TABLE, *more):
        if report.get(key) is not None:
            print(f"{label:<22}{report[key]:>12.4g}", flush=True)


def write_json(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """metrics.json, written atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
    return path


def resized(frames: Iterable[torch.Tensor], size: tuple[int, int]) -> Iterator[torch.Tensor]:
    """Frames scaled (bilinear, antialiased) to ``size`` = (H, W) when they are not that size already."""
    for frame in frames:
        if tuple(frame.shape[-2:]) != size:
            frame = F.interpolate(frame, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        yield frame


def parse_args(argv: Sequence[str]) -> dict[str, str]:
    """``key=value`` pairs; unknown or repeated keys and missing required ones are one-line NSTErrors."""
    args: dict[str, str] = {}
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in KEYS or key in args:
            why = "is given twice" if key in args else "is not a key=value argument of nst.metrics"
            raise NSTError(f"{item!r} {why}; valid keys: {', '.join(f'{k}=' for k in KEYS)}")
        args[key] = value
    missing = [k for k in KEYS[:3] if not args.get(k)]
    if missing:
        raise NSTError(f"missing {', '.join(missing)}; usage: {COMMAND} input=clip.mp4 "
                       "output=stylized.mp4 style.image=painting.jpg")
    return args


def _positive_int(args: dict[str, str], key: str) -> int | None:
    value = args.get(key)
    if value is not None and not (value.isdigit() and int(value) > 0):
        raise NSTError(f"{key} must be a positive integer, got {value!r}")
    return None if value is None else int(value)


def _listed(args: dict[str, str], key: str, kind: type = str) -> list | None:
    """``key``'s value as a list of ``kind``: ``[a,b]`` as Hydra writes lists, or one value; None if not given."""
    value = args.get(key)
    try:
        return None if value is None else [kind(v) for v in (value[1:-1].split(",") if value[:1] == "[" else [value])]
    except ValueError:
        raise NSTError(f"{key} must be a number or a list of numbers ([0.7,0.3]), got {value!r}") from None


def measure(args: dict[str, str], write: bool = True) -> tuple[VideoMetrics, dict]:
    """Measure an output video against its input and the style image; write the JSON (unless ``write`` is
    False); return the metrics and the record (with ``json``, its path).

    The evaluation size is the output's, its long side scaled down to ``max_size``; input frames are
    scaled to it, so an output made at a smaller size than its input is compared at the output's size.
    """
    max_size, max_frames = _positive_int(args, "max_size"), _positive_int(args, "max_frames")
    estimator = build_estimator(args.get("flow", "dis"), args.get("flow.weights"))
    with (
        open_video(args["input"], max_frames=max_frames) as inp,
        open_video(args["output"], max_frames=max_frames) as out,
    ):
        if abs(inp.width * out.height - out.width * inp.height) > 0.02 * out.width * inp.height:
            raise NSTError(f"input {args['input']} is {inp.width}x{inp.height} but output {args['output']} is "
                           f"{out.width}x{out.height}: not the same picture; compare a video with its own output")
        size = fit_long_side(out.height, out.width, max_size, upscale=False)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        criterion = metric_criterion(args.get("vgg.weights", "imagenet"), device, args.get("vgg.arch"))
        styles = [s.to(device) for s in load_style_images(_listed(args, "style.image"), max(size))]
        criterion.set_style(styles, _listed(args, "style.blend", float))
        metrics = evaluate_video(resized(inp, size), resized(out, size), criterion, estimator)
    report = record(args["input"], args["output"], frames=len(metrics.style_distance.per_frame), size=size,
                    flow=estimator.name, encoder=criterion.encoder.label, style_image=args["style.image"],
                    style_blend=args.get("style.blend"), metrics=metrics)
    path = Path(args.get("json") or Path(args["output"]).parent / "metrics.json")
    if write:
        write_json(report, path)
    return metrics, {**report, "json": str(path)}


def warp_only(source: Path, target: Path) -> dict[str, Any]:
    """The record of E_warp alone (no style image: no encoder), at the output's size, with DIS flows."""
    with open_video(target) as out:
        size, frames = (out.height, out.width), out.frame_count
    estimator = DISFlow()
    with open_video(source) as a, open_video(source) as b, open_video(target) as c:
        e_in = warping_error(resized(a, size), estimator=estimator)
        e_out = warping_error(resized(b, size), c, estimator)
    return record(source, target, frames=frames, size=size, flow=estimator.name, warp=(e_in, e_out))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nst.evaluation.measure input=... output=... style.image=...``: the table, then metrics.json."""
    try:
        _, report = measure(parse_args(sys.argv[1:] if argv is None else argv))
    except NSTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print_table(report)
    print(f"wrote {report['json']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
