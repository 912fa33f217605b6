"""Stylize image files with a trained fast network (the file written by ``train.py``).

Images go through the network one at a time at their own size (the network takes any size).
Videos come in a later release, through the same :func:`stylize` call.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from nst.errors import NSTError
from nst.io.image import IMAGE_SUFFIXES, load_image, save_image


@torch.inference_mode()
def stylize(net: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Run the network on (B,3,H,W) images in [0,1] on the net's device; returns float32 in [0,1]."""
    device = next(net.parameters()).device
    x = image.to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return net(x).float()


def input_images(path: str | os.PathLike) -> list[Path]:
    """One image file, or every image below a folder (recursive, sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise NSTError(f"no images in folder {path}; give an image file or a folder of images")
        return files
    raise NSTError(f"input not found: {path}")


def output_paths(inputs: list[Path], source: Path, output: Path) -> list[Path]:
    """Where each stylized image goes: ``output`` itself for one file given an image name, otherwise
    the same relative names inside the ``output`` folder."""
    if source.is_file():
        return [output if output.suffix.lower() in IMAGE_SUFFIXES else output / source.name]
    return [output / p.relative_to(source) for p in inputs]


def stylize_files(
    net: nn.Module, source: str | os.PathLike, output: str | os.PathLike, max_size: int | None = None
) -> list[Path]:
    """Stylize an image or a folder of images; each output is written atomically. Returns the outputs."""
    source, output = Path(source), Path(output)
    inputs = input_images(source)
    targets = output_paths(inputs, source, output)
    for src, dst in tqdm(list(zip(inputs, targets)), desc="stylizing", unit="image", disable=len(inputs) < 2):
        save_image(stylize(net, load_image(src, max_size=max_size, min_side=None)), dst)
    return targets
