"""Test helpers written once: small generated pictures, the reader of offline W&B runs, the entry points."""

from __future__ import annotations

import importlib.util
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image


def make_image(path: Path, size: tuple[int, int] = (64, 48), seed: int = 0) -> Path:
    """A picture of uniform random pixels, ``size`` = (width, height); the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def make_images(root: Path, n: int = 8, size: tuple[int, int] = (48, 48), suffix: str = ".png") -> Path:
    """``n`` smooth random pictures in [10, 245] (so added noise is never clipped away) in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    w, h = size
    for i in range(n):
        coarse = Image.fromarray(rng.integers(20, 235, (6, 6, 3), dtype=np.uint8)).resize((w, h), Image.BILINEAR)
        fine = np.asarray(coarse).astype(int) + rng.integers(-15, 16, (h, w, 3))
        Image.fromarray(np.clip(fine, 10, 245).astype(np.uint8)).save(root / f"img{i}{suffix}")
    return root


def write_vgg16_weights(path: Path, seed: int = 0) -> Path:
    """A VGG-16 encoder weights file as ``vgg=hed16`` loads one (a torchvision ``vgg16().features`` state dict,
    ``features.`` keys), tiny on disk: each kernel is a strided view of a short seeded vector (a few thousand
    values, kaiming scale), so its channels differ but the file stays ~170 kB instead of 59 MB."""
    from nst.encoders.vgg import vgg_features

    generator, state = torch.Generator().manual_seed(seed), {}
    for key, value in vgg_features("vgg16", initialise=False).state_dict().items():
        if value.dim() == 4:
            out, inp, kh, kw = value.shape
            base = torch.randn((out - 1) * 7 + (inp - 1) * 3 + kh * kw, generator=generator)
            value = (base * (2 / (out * kh * kw)) ** 0.5).as_strided(value.shape, (7, 3, kw, 1))
        else:
            value = torch.zeros(1).expand(value.shape)
        state[f"features.{key}"] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def wandb_records(path: Path) -> Iterator:
    """Records of an offline ``run-*.wandb`` file: LevelDB-log framing (32 KiB blocks, 7-byte chunk headers:
    crc32, length, type) around protobuf ``Record`` messages."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, parts = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # too little room left for a chunk header: block padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        parts += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def item_key(item) -> str:
    """The name of a W&B history/summary item, nested keys joined by '/'."""
    return item.key or "/".join(item.nested_key)


def wandb_history(run_file: Path) -> list[dict]:
    """The history rows (logged dicts) of an offline run file."""
    return [
        {item_key(it): json.loads(it.value_json) for it in record.history.item}
        for record in wandb_records(run_file)
        if record.WhichOneof("record_type") == "history"
    ]


def compose_config(name: str, overrides: list[str], hydra: bool = False) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with Hydra's command-line ``overrides``, without running anything;
    ``hydra=True`` keeps the ``hydra`` node (run folders and the like)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from nst.app.config import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=overrides, return_hydra_config=hydra)


def copy_config(cfg: DictConfig, out: Path, *overrides: str) -> DictConfig:
    """A deep copy of ``cfg`` whose run folder is ``out``, with ``key=value`` overrides merged in."""
    from omegaconf import OmegaConf

    result = OmegaConf.create(OmegaConf.to_container(cfg))  # interpolations kept, resolved later
    result.paths.output_dir = str(out)
    return OmegaConf.merge(result, OmegaConf.from_dotlist(list(overrides))) if overrides else result


def load_entry(name: str) -> ModuleType:
    """The entry point ``<name>.py`` of the repository root as a module, to call its ``main`` in-process."""
    spec = importlib.util.spec_from_file_location(f"{name}_entry", Path(__file__).resolve().parents[1] / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
