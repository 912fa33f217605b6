"""Stylize images with a trained fast network: ``python infer.py weights=style.pt input=photo.jpg``.

``weights`` is the file train.py exports (``train_style.pt``, ``checkpoints/best.pt``) or one of its
checkpoints (``checkpoints/best.ckpt``, ``last.ckpt``), loaded with ``weights_only=True``.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from nst.app.cli import hydra_entry
from nst.app.device import resolve_device
from nst.errors import NSTError
from nst.fastnet.export import load_exported
from nst.fastnet.inference import stylize_files


@hydra_entry("infer")
def main(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "weights"):
        raise NSTError(
            "infer.py needs weights=PATH: the .pt file that train.py exports, or a checkpoints/*.ckpt of a train.py run"
        )
    device = resolve_device(cfg.device)
    net = load_exported(cfg.weights, map_location=device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    outputs = stylize_files(net, cfg.input, cfg.output, cfg.max_size)
    print(f"wrote {len(outputs)} image(s): {outputs[0] if len(outputs) == 1 else outputs[0].parent}")


if __name__ == "__main__":
    main()
