"""The body of optimize.py: Gatys et al. 2016 on one still image (videos go on to nst/app/optimize_video.py),
called by the command line and by the web page (:mod:`nst.web`) alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig

from nst.app.builders import build_criterion
from nst.app.config import build, plain, style_paths
from nst.app.device import check_precision, resolve_device
from nst.app.optimize_video import optimize_video
from nst.app.run_info import resolved_dict, save_run_info
from nst.errors import NSTError
from nst.gatys.callbacks import build_callbacks
from nst.gatys.loop import LoopSettings
from nst.gatys.pyramid import stylize_pyramid
from nst.io.files import refuse_overwriting
from nst.io.image import IMAGE_SUFFIXES, load_input, load_style_images, save_image
from nst.io.video import is_video


def optimize(cfg: DictConfig, on_step: Callable[[int, int], None] | None = None) -> Path:
    """Load, stylize, write the image atomically, print a summary line and the output path.

    ``on_step(done, total)`` follows the work (iterations of a still, frames of a video; not the chunks of
    ``video.chunks > 1``); an exception it raises stops the run and no output is written."""
    if is_video(cfg.content):  # a video file, GIF or frame folder: nst/app/optimize_video.py
        if cfg.video.get("chunk") is None and cfg.video.get("chunks", 1) != 1:  # many jobs: nst/app/chunks.py
            from nst.app.chunks import optimize_chunked  # submitit is imported only when it is used

            return optimize_chunked(cfg)
        return optimize_video(cfg, on_step)
    run_dir = Path(cfg.paths.output_dir)
    output = Path(cfg.output)
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise NSTError(f"output={output} has no image suffix; use one of {', '.join(IMAGE_SUFFIXES)}")
    refuse_overwriting(output, [cfg.content, *style_paths(cfg.style)])
    save_run_info(cfg, run_dir)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    check_precision(device, cfg.precision)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one image size per (pyramid level of a) run

    pyramid = build(cfg.pyramid)
    content = load_input(cfg.content, cfg.max_size, "content")  # max_size: an upper limit, never upscaled
    style_size = cfg.style.get("size") or max(content.shape[-2:])  # default: the content's long side
    style_images = load_style_images(style_paths(cfg.style), style_size)
    pyramid.check(content, style_images)  # a schedule too deep for these images fails before VGG loads
    criterion = build_criterion(cfg).to(device)
    settings = LoopSettings(
        iterations=cfg.iterations,
        optimizer=build(cfg.optimizer),
        patience=cfg.early_stop.patience if cfg.early_stop.enabled else None,
        tolerance=cfg.early_stop.tolerance,
        precision=cfg.precision,
    )
    callbacks = build_callbacks(
        plain(cfg.logger), run_dir, resolved_dict(cfg), sum(pyramid.schedule(cfg.iterations)),
        save_every=cfg.save_every, color_source=content if cfg.preserve_color else None,
    )
    if on_step is not None:
        callbacks.append(lambda info: on_step(info.iteration + 1, info.iterations))
    result = stylize_pyramid(
        content,
        criterion,
        pyramid=pyramid,
        settings=settings,
        style_images=style_images,
        style_blend=plain(cfg.style.blend),
        init=cfg.init,
        preserve_color=cfg.preserve_color,
        callbacks=callbacks,
        seed=cfg.seed,
    )
    save_image(result.image, output)
    print(result.summary(), flush=True)
    print(f"output: {output}", flush=True)
    return output

