"""Choosing the compute device from the ``device`` key: ``auto`` | ``cpu`` | ``cuda`` (or ``cuda:N``)."""

from __future__ import annotations

import warnings

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


# --- trainer precision (train.py) -------------------------------------------------------------------------------


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX). Without it, oneDNN emulates bf16 and a
    VGG-19 forward at 256 px took 127 s instead of 0.57 s in float32 (AVX2 machine, torch 2.14)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN (e.g. some ARM wheels): assume emulated
        return False


def check_trainer_precision(accelerator: str, precision: str | int) -> str:
    """The Lightning ``trainer.precision`` to train with: ``precision`` itself, except bf16 on a CPU without
    native bf16, which would run ~200x slower; that falls back to ``32-true`` with a warning."""
    precision = str(precision)
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and precision.startswith("bf16") and not cpu_has_native_bf16():
        warnings.warn(
            f"trainer.precision={precision} on a CPU without native bf16 (no AVX512-BF16/AMX) runs ~200x slower "
            "than float32: training in 32-true instead; set trainer.precision=32-true to silence this",
            stacklevel=2,
        )
        return "32-true"
    return precision
