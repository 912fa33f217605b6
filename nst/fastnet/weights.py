"""The weights files of a fast network: ours, ``{"model_args": ..., "state_dict": ...}`` (nanoGPT style), our
training checkpoints, and through :mod:`nst.fastnet.foreign_weights` other projects' files (:func:`load_weights`).

It is what ``infer.py`` loads, with ``weights_only=True``; a Lightning ``.ckpt`` of ours loads too, since every
checkpoint stores ``model_args`` next to the ``net.*`` weights. No Lightning here: both are read as plain
dicts of tensors, so inference and a later web UI need torch alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nst.encoders.state_dict import read_torch_file
from nst.errors import NSTError
from nst.fastnet.foreign_weights import FORMATS, MARKERS, convert_state_dict, detect_format
from nst.fastnet.transformer_net import TransformerNet
from nst.io.files import atomic_path

#: Leading key prefixes dropped on load: ``torch.compile``'s and the LightningModule attribute's.
_PREFIXES = ("_orig_mod.", "net.")
#: The key that marks a Lightning checkpoint (what ``Trainer.save_checkpoint`` writes).
LIGHTNING_KEY = "pytorch-lightning_version"


def _strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop leading ``_orig_mod.`` (torch.compile) and ``net.`` (LightningModule attribute) prefixes."""
    out = {}
    for key, value in state_dict.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix) :], True
        out[key] = value
    return out


def export_weights(
    net: nn.Module,
    path: str | os.PathLike,
    dtype: torch.dtype = torch.float32,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``{"model_args", "state_dict"}`` (CPU, ``dtype``) atomically: the small file inference loads.

    Accepts a ``torch.compile``-d net; its ``_orig_mod.`` prefixes are removed. ``dtype=torch.float16`` halves
    the file (the shipped networks); loading casts back to float32. ``meta``: plain data stored beside the
    weights (style names, encoder, training data, steps, the command), read back by :func:`read_meta`.
    """
    path = Path(path)
    net = getattr(net, "_orig_mod", net)
    model_args = getattr(net, "model_args", None)
    if not isinstance(model_args, dict):
        raise NSTError(f"cannot export {type(net).__name__} to {path}: it has no model_args; pass a TransformerNet")
    state_dict = {
        k: v.detach().to(device="cpu", dtype=dtype).contiguous() for k, v in _strip_prefixes(net.state_dict()).items()
    }
    data = {"model_args": dict(model_args), "state_dict": state_dict} | ({"meta": dict(meta)} if meta else {})
    try:
        with atomic_path(path) as tmp:
            torch.save(data, tmp)
    except (OSError, RuntimeError) as exc:
        raise NSTError(f"cannot write weights file {path}: {_first_line(exc)}; check the folder is writable") from exc
    return path


def load_exported(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> TransformerNet:
    """Rebuild a :class:`TransformerNet` from a file written by :func:`export_weights`, or from a training
    checkpoint (``last.ckpt``, ``best.ckpt``); returned in eval mode.

    Loads with ``weights_only=True`` (no arbitrary code from pickles).
    """
    path = Path(path)
    hint = "pass the exported .pt file or a checkpoints/*.ckpt of a train.py run"
    if not path.is_file():
        raise NSTError(f"weights file not found: {path}; {hint}")
    data = read_torch_file(path, "weights", hint, map_location)
    if isinstance(data, dict) and LIGHTNING_KEY in data:
        data = _net_of_checkpoint(data, path, hint)
    if not _is_export(data):
        raise NSTError(f"{path} is not an nst weights file (no model_args/state_dict); {hint}")
    try:
        net = TransformerNet(**data["model_args"])
    except (TypeError, NSTError) as exc:
        raise NSTError(f"bad model_args {data['model_args']} in {path}: {_first_line(exc)}; {hint}") from exc
    state_dict = _strip_prefixes(dict(data["state_dict"]))
    problem = _mismatch(net.state_dict(), state_dict)
    if problem:
        raise NSTError(f"weights in {path} do not match TransformerNet({data['model_args']}): {problem}; {hint}")
    net.load_state_dict(state_dict)
    return net.to(map_location).eval()


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``meta`` dict of a weights file (empty when it has none), read with ``weights_only=True``."""
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        raise NSTError(f"cannot read weights file {path}: not a torch file of plain tensors") from exc
    meta = data.get("meta") if isinstance(data, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def export_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write the weights file of a training checkpoint (e.g. ``best.ckpt`` -> ``best.pt``), atomically."""
    return export_weights(load_exported(checkpoint), path)


def _net_of_checkpoint(data: dict[str, Any], path: Path, hint: str) -> dict[str, Any]:
    """The ``model_args`` and the ``net.*`` weights of a Lightning checkpoint, as an export dict."""
    if not isinstance(data.get("model_args"), dict):
        raise NSTError(f"{path} is a Lightning checkpoint without model_args (not from train.py, or older); {hint}")
    state_dict = data.get("state_dict") or {}
    net = {key[len("net.") :]: value for key, value in state_dict.items() if key.startswith("net.")}
    return {"model_args": data["model_args"], "state_dict": net}


def _is_export(data: object) -> bool:
    """True for the ``export_weights`` format: a ``model_args`` dict next to a dict of tensors."""
    if not isinstance(data, dict) or not isinstance(data.get("model_args"), dict):
        return False
    sd = data.get("state_dict")
    return isinstance(sd, dict) and all(isinstance(v, torch.Tensor) for v in sd.values())


def _mismatch(expected: dict[str, torch.Tensor], found: dict[str, Any]) -> str:
    """Describe key and shape differences in one line ('' if none): torch's own message spans many lines."""
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        return f"{len(missing)} missing keys {missing[:2]}, {len(unexpected)} unexpected keys {unexpected[:2]}"
    shapes = [(k, tuple(found[k].shape), tuple(v.shape)) for k, v in expected.items() if found[k].shape != v.shape]
    if shapes:
        k, got, want = shapes[0]
        return f"{len(shapes)} tensors have the wrong shape (e.g. {k}: {got} in the file, {want} expected)"
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_weights(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> TransformerNet:
    """A network from any of :data:`FORMATS`, in eval mode on ``map_location``; other files are one-line errors.

    Files of ours (and anything that is not a foreign state dict, such as a Lightning checkpoint) go to
    :func:`load_exported`, which explains what it refuses.
    """
    path = Path(path)
    if not path.is_file():
        return load_exported(path, map_location)  # its "not found" message
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unreadable: load_exported says why, in its words
        return load_exported(path, map_location)
    wrapped = data.get("state_dict") if isinstance(data, dict) and "model_args" not in data else None
    if detect_format(wrapped) in MARKERS:
        data = wrapped  # a foreign state dict wrapped in {"state_dict": ...}
    layout = detect_format(data)
    if layout in MARKERS:
        try:
            args, state = convert_state_dict(data, layout)
        except NSTError as exc:
            raise NSTError(f"{path}: {exc}") from None
        net = TransformerNet(**args)
        net.load_state_dict(state)
        return net.to(map_location).eval()
    if layout is None and _plain_state_dict(data) and not any(k.startswith(("net.", "_orig_mod.")) for k in data):
        keys = sorted(data)
        raise NSTError(
            f"{path} holds weights of another architecture: none of its {len(keys)} keys (e.g. {keys[:3]}) match "
            f"a known layout ({', '.join(FORMATS)}: {MARKERS['fast_neural_style'][0]}, {MARKERS['seed'][0]}, "
            "or model_args + state_dict); pass a fast style network's weights"
        )
    return load_exported(path, map_location)


def _plain_state_dict(data: object) -> bool:
    return isinstance(data, dict) and bool(data) and all(isinstance(v, torch.Tensor) for v in data.values())
