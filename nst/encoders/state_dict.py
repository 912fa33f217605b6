"""The one reader of weights files (VGG's ``vgg.weights=PATH``, HED's converted cache, the fast networks' files):
``torch.load(..., weights_only=True)`` with every failure turned into one line that says what is wrong.

torch raises many types for a bad file (UnpicklingError, RuntimeError, EOFError, IndexError for some text files),
and its own text suggests ``weights_only=False``, unsafe advice for a user: so the message never names them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from nst.errors import NSTError


def _what_it_is(path: Path) -> str:
    """Why a file that exists cannot be a torch file, in words: empty, text, or some other data."""
    head = path.read_bytes()[:512] if path.stat().st_size else b""
    if not head:
        return "the file is empty"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "not a PyTorch file of plain tensors"
    return "a text file, not PyTorch weights"


def read_torch_file(path: str | os.PathLike, what: str, hint: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a missing, empty or foreign file is one NSTError line
    ``<what>: <path>: <why>; <hint>``."""
    path = Path(path)
    if not path.is_file():
        raise NSTError(f"{what}: no such file {path}; {hint}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # see the module docstring: the type adds nothing a user can act on
        raise NSTError(f"{what}: cannot read {path}: {_what_it_is(path)}; {hint}") from None


def tensor_dict(data: Any, path: str | os.PathLike, what: str, hint: str) -> dict[str, torch.Tensor]:
    """The state dict in ``data`` (a plain one, or one wrapped as ``{"state_dict": ...}``), else one NSTError line."""
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise NSTError(f"{what}: {path} does not hold a state dict of tensors; {hint}")
    return data


def read_state_dict(path: str | os.PathLike, what: str, hint: str) -> dict[str, torch.Tensor]:
    """A state dict of tensors from ``path`` (on the CPU), or one NSTError line."""
    return tensor_dict(read_torch_file(path, what, hint), path, what, hint)


def save_torch_file(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary name in the same folder, renamed when complete (no half-written cache)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
