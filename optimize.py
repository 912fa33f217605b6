"""Gatys et al. 2016 neural style transfer for one still image, by optimising its pixels (no Lightning).

    python optimize.py                                        # bundled photo + style=udnie -> run dir
    python optimize.py content=photo.jpg style=starry_night
    python optimize.py content=photo.jpg style.image=my_painting.png output=out.png
    python optimize.py -m loss.style_weight=1e5,1e6,1e7       # multirun: one image per value

Every key is in conf/optimize.yaml. The run dir gets the image (unless ``output`` points elsewhere), the
resolved config, and with ``logger=csv`` (default) the loss curves as CSV and PNG.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from nst.cli import hydra_entry
from nst.config import build, save_resolved_config, style_paths
from nst.device import resolve_device
from nst.errors import NSTError
from nst.gatys import EarlyStopping, load_input, stylize_image
from nst.gatys_callbacks import build_callbacks
from nst.image import IMAGE_SUFFIXES, save_image


@hydra_entry("optimize")
def main(cfg: DictConfig) -> Path:
    """Load, stylize, write the image atomically, print a summary line and the output path."""
    run_dir = Path(cfg.paths.output_dir)
    output = Path(cfg.output)
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise NSTError(f"output={output} has no image suffix; use one of {', '.join(IMAGE_SUFFIXES)}")
    save_resolved_config(cfg, run_dir / "config.yaml")
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one image size for the whole run

    styles = style_paths(cfg.style)
    content = load_input(cfg.content, cfg.max_size, "content")
    style_images = [load_input(path, cfg.max_size, "style") for path in styles]

    criterion = build(cfg.loss, encoder=OmegaConf.to_container(cfg.vgg, resolve=True)).to(device)
    early_stop = EarlyStopping(cfg.early_stop.patience, cfg.early_stop.tolerance) if cfg.early_stop.enabled else None
    callbacks = build_callbacks(cfg.logger, run_dir, OmegaConf.to_container(cfg, resolve=True), cfg.iterations)
    result = stylize_image(
        content,
        criterion,
        style_images=style_images,
        style_blend=cfg.style.blend,
        init=cfg.init,
        optimizer=build(cfg.optimizer),
        iterations=cfg.iterations,
        early_stop=early_stop,
        preserve_color=cfg.preserve_color,
        precision=cfg.precision,
        callbacks=callbacks,
        seed=cfg.seed,
    )
    save_image(result.image, output)
    print(result.summary(), flush=True)
    print(f"output: {output}", flush=True)
    return output


if __name__ == "__main__":
    main()
