"""Running one job of the page: the job folder's config through the function the command line calls
(:func:`nst.app.infer.infer` for infer.py, :func:`nst.app.optimize.optimize` for optimize.py), then what only the
page adds for photos (colour kept after a fast network, input | result side by side)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from nst.app.infer import infer
from nst.app.optimize import optimize
from nst.color import restore_color
from nst.io.image import load_image, save_image
from nst.web.jobs import Progress

CONFIG = "config.yaml"
SIDE_BY_SIDE = "result_side_by_side"


def run_job(folder: Path, record: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Run the job in ``folder``; returns the record's new fields: ``result``, ``side_by_side``, ``metrics``."""
    cfg = OmegaConf.load(folder / CONFIG)
    request = record["request"]
    if request["method"] == "fast":
        infer(cfg, on_frames=progress.add, on_start=progress.start)
        output = Path(cfg.output)
        metrics_file = output.parent / "metrics.json"
    else:
        output = optimize(cfg, on_step=progress.step)
        metrics_file = Path(cfg.paths.output_dir) / "metrics.json"
    photo = record["input"]["kind"] == "image"
    if photo and request["method"] == "fast" and request["preserve_color"]:
        content = load_image(cfg.input)
        save_image(restore_color(load_image(output), _resized(content, output)), output)
    side = output.with_name(f"{SIDE_BY_SIDE}{output.suffix}")
    if photo and request["side_by_side"]:
        stylized = load_image(output)
        save_image(torch.cat([_resized(load_image(_content(cfg)), output), stylized], dim=-1), side)
    fields: dict[str, Any] = {"result": output.name, "side_by_side": side.name if side.is_file() else None}
    if metrics_file.is_file():
        fields["metrics"] = _metrics(json.loads(metrics_file.read_text()))
    return fields


def _content(cfg: Any) -> str:
    return str(cfg.input if "input" in cfg else cfg.content)


def _resized(image: torch.Tensor, like: Path) -> torch.Tensor:
    """``image`` at the size of the image file ``like`` (the result may have been scaled by the size limit)."""
    target = load_image(like).shape[-2:]
    if image.shape[-2:] == target:
        return image
    return torch.nn.functional.interpolate(image, size=tuple(target), mode="bilinear", antialias=True,
                                           align_corners=False).clamp(0, 1)


def _metrics(report: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics.json (infer.py's holds one report per output: the first is this job's)."""
    if report and all(isinstance(v, dict) for v in report.values()):
        report = next(iter(report.values()))
    keys = ("warp_error_input", "warp_error_output", "warp_error", "warp_error_ratio", "style_distance",
            "content_distance", "seconds_per_frame")
    return {k: report[k] for k in keys if isinstance(report.get(k), (int, float))}
