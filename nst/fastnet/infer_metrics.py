"""``metrics=true`` of ``infer.py``: the foundation's video metrics (:mod:`nst.metrics`) for each stylized video.

E_warp of the input and of the output and their ratio always (Lai et al. 2018, as pinned in
:mod:`nst.metrics`); style and content distance too when a style image is given, on the encoder ``metrics_vgg``
names (``vgg19:imagenet`` by default, ``vgg16:hed``, see :func:`nst.encoders.vgg.encoder_spec`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from nst.errors import NSTError
from nst.io.files import atomic_path
from nst.io.video import open_video
from nst.metrics import run as metrics_run
from nst.metrics import warping_error

ROWS = (("E_warp input", "warp_error_input"), ("E_warp output", "warp_error_output"),
        ("E_warp output/input", "warp_error_ratio"), ("style distance", "style_distance"),
        ("content distance", "content_distance"))


def _resized(frames: Iterable[torch.Tensor], size: tuple[int, int]) -> Iterator[torch.Tensor]:
    for frame in frames:
        if tuple(frame.shape[-2:]) != size:
            frame = F.interpolate(frame, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        yield frame


def video_metrics(source: Path, target: Path, style_image: str | None = None, vgg_weights: str = "imagenet") -> dict:
    """The metrics of one stylized video as a flat dict (means over frames), at the output's size."""
    if style_image:
        _, report = metrics_run({"input": str(source), "output": str(target), "style.image": str(style_image),
                                 "vgg.weights": vgg_weights, "json": str(target.parent / f".{target.name}.json")})
        Path(report["json"]).unlink(missing_ok=True)  # the combined metrics.json is written by the caller
        means = {key: report[key]["mean"] for _, key in ROWS if isinstance(report.get(key), dict)}
        return {"frames": report["frames"], "encoder": report["encoder"], **means,
                "warp_error_ratio": report["warp_error_ratio"]}
    with open_video(target) as out:
        size = (out.height, out.width)
    with open_video(source) as a, open_video(source) as b, open_video(target) as c:
        e_in = warping_error(_resized(a, size)).mean
        e_out = warping_error(_resized(b, size), c).mean
    return {"frames": out.frame_count, "warp_error_input": e_in, "warp_error_output": e_out,
            "warp_error_ratio": e_out / e_in if e_in > 0 else None}


def write_metrics(reports: dict[str, dict], path: Path) -> Path:
    """Print a table per video and write all reports to ``path`` (metrics.json) atomically."""
    for name, report in reports.items():
        encoder = f", encoder {report['encoder']}" if report.get("encoder") else ""
        print(f"metrics of {name} ({report['frames']} frames{encoder}):")
        for label, key in ROWS:
            value = report.get(key)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                print(f"  {label:<22}{value:>12.4g}")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(reports, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def measure_jobs(jobs: list, output: Path, style_image: str | None = None, vgg_weights: str = "imagenet") -> Path:
    """Metrics of every video job, printed and written to ``metrics.json`` in the output folder."""
    videos = [job for job in jobs if job.video]
    if not videos:
        raise NSTError("metrics=true measures videos, and the input has none; drop metrics=true")
    reports = {str(job.target): video_metrics(job.source, job.target, style_image, vgg_weights) for job in videos}
    folder = output if output.is_dir() else output.parent
    return write_metrics(reports, folder / "metrics.json")
