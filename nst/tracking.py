"""Experiment-tracking settings shared by both loops; W&B never asks for a login."""

from __future__ import annotations

import netrc
import os
from pathlib import Path


def wandb_mode(requested: str | None = None) -> str:
    """The W&B mode to run in: ``requested`` if given, else ``WANDB_MODE``, else ``online`` when an API key
    is configured (``WANDB_API_KEY`` or ``wandb login``'s netrc entry) and ``offline`` otherwise.

    Offline runs are written under the run's ``wandb/`` folder; ``wandb sync`` uploads them later.
    """
    if requested:
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        auth = netrc.netrc().authenticators(os.environ.get("WANDB_BASE_URL", "api.wandb.ai").split("//")[-1])
    except (OSError, netrc.NetrcParseError):
        auth = None
    return "online" if auth else "offline"


def wandb_dir(run_dir: str | os.PathLike) -> Path:
    """Where W&B writes its ``wandb/`` folder: ``WANDB_DIR`` when set, as W&B users expect, else the run folder."""
    return Path(os.environ.get("WANDB_DIR") or run_dir)
