"""Choosing the compute device from the ``device`` key: ``auto`` | ``cpu`` | ``cuda`` (or ``cuda:N``)."""

from __future__ import annotations

import torch

from nst.errors import NSTError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA on a machine without it is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NSTError(f"unknown device {name!r}; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NSTError("device=cuda but no CUDA GPU is available here; use device=cpu or device=auto")
    if device.type not in ("cpu", "cuda"):
        raise NSTError(f"unsupported device {name!r}; use auto, cpu or cuda")
    return device
