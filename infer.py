"""Stylize images and videos with a trained fast network, or export it.

``python infer.py weights=style.pt input=clip.mp4 output=out.mp4`` (images, videos, GIFs, folders);
``python infer.py weights=style.pt export=onnx output=style.onnx`` (also ``export=torchscript``).

``weights`` is the file train.py exports (``train_style.pt``, ``checkpoints/best.pt``), one of its checkpoints
(``checkpoints/best.ckpt``, ``last.ckpt``), or a foreign format (see nst/fastnet/formats.py).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nst.app.cli import hydra_entry
from nst.app.config import style_choice
from nst.app.infer import infer
from nst.errors import NSTError
from nst.fastnet.formats import load_weights


def export(cfg: DictConfig) -> None:
    from nst.fastnet.exporters import export_model

    net = load_weights(cfg.weights).single_style(style_choice(cfg.get("style")))
    output = Path(cfg.output)
    if output.suffix.lower() not in (".onnx", ".pt", ".ts", ".torchscript"):
        output = output.with_suffix(".onnx" if cfg.export == "onnx" else ".pt")
    path, difference = export_model(net, output, str(cfg.export))
    check = "not checked (pip install onnxruntime)" if difference is None else f"mean |diff| {difference:.1e}"
    print(f"wrote {path} ({cfg.export}, dynamic batch/height/width, {check} against PyTorch)")


@hydra_entry("infer")
def main(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "weights"):
        raise NSTError("infer.py needs weights=PATH: the .pt file train.py exports, or a train.py checkpoints/*.ckpt")
    if cfg.get("export"):
        return export(cfg)
    infer(cfg)


if __name__ == "__main__":
    main()
