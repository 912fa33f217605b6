"""A trained network as a file that ships: fp16 weights with the metadata that says how they were made.

``python -m nst.app.ship <run>/checkpoints/last.ckpt weights/six_styles.pt`` reads the network, its training
step from the checkpoint and the run's ``config.yaml`` beside it, and writes ``{"model_args", "state_dict",
"meta"}`` in float16 (half the bytes; inference casts back to float32). ``meta`` names the styles, the encoder,
the training data, the crop size, the steps and the command, so a file found on its own can be reproduced.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from nst.errors import NSTError
from nst.fastnet.weights import export_weights, load_exported


def run_metadata(checkpoint: Path) -> dict[str, Any]:
    """What the run folder of ``checkpoint`` (``<run>/checkpoints/x.ckpt``) says about its training."""
    meta: dict[str, Any] = {}
    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if isinstance(data, dict) and "global_step" in data:
        meta["steps"] = int(data["global_step"])
    config = checkpoint.resolve().parent.parent / "config.yaml"
    if config.is_file():
        cfg = OmegaConf.load(config)
        meta["encoder"] = f"{cfg.vgg.arch}:{cfg.vgg.weights}"
        meta["data"] = str(Path(str(cfg.data.get("root", ""))).name or cfg.data.get("source"))
        meta["image_size"] = int(cfg.data.image_size)
        meta["batch_size"] = int(cfg.data.batch_size)
        meta["precision"] = str(cfg.trainer.precision)
    return meta


def ship(checkpoint: str | Path, out: str | Path, command: str | None = None,
         info: dict[str, str] | None = None) -> Path:
    """Write the fp16 weights file of ``checkpoint`` (a train.py ``.ckpt`` or ``.pt``) to ``out``; ``info``: more
    ``{key: text}`` for the metadata (the hardware, the wall time)."""
    checkpoint = Path(checkpoint)
    net = load_exported(checkpoint)
    meta = {"styles": list(net.styles)} | (run_metadata(checkpoint) if checkpoint.suffix == ".ckpt" else {})
    if command:
        meta["command"] = command
    meta |= dict(info or {})
    return export_weights(net, out, dtype=torch.float16, meta=meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a train.py checkpoint (.ckpt) or weights file (.pt)")
    parser.add_argument("out", help="the weights file to write, e.g. weights/six_styles.pt")
    parser.add_argument("--command", help="the training command, stored in the file's metadata")
    parser.add_argument("--info", action="append", default=[], metavar="KEY=TEXT",
                        help="more metadata, e.g. --info hardware='2-core CPU' --info wall_time='2 h' (repeatable)")
    args = parser.parse_args(argv)
    bad = [item for item in args.info if "=" not in item]
    if bad:
        print(f"error: --info {bad[0]!r} is not KEY=TEXT", file=sys.stderr)
        return 1
    try:
        path = ship(args.checkpoint, args.out, args.command, dict(item.split("=", 1) for item in args.info))
    except NSTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, float16)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
