"""Experiment-tracking settings shared by both loops; W&B never asks for a login."""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nst.errors import NSTError


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


def start_wandb(
    settings: Mapping[str, Any], folder: str | os.PathLike, config: Mapping[str, Any], job_type: str
) -> Any:
    """``wandb.init`` from a ``logger.wandb`` config node as data, writing under :func:`wandb_dir`; a run that
    cannot start is one :class:`NSTError` line instead of W&B's traceback."""
    import wandb

    settings = dict(settings or {})
    directory = wandb_dir(folder)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        return wandb.init(
            project=settings.get("project") or "nst", entity=settings.get("entity"), name=settings.get("name"),
            group=settings.get("group"), tags=list(settings.get("tags") or []),
            mode=wandb_mode(settings.get("mode")), dir=str(directory), config=dict(config), job_type=job_type,
        )
    except Exception as exc:  # wandb raises many types (auth, network, settings)
        raise NSTError(
            f"could not start W&B ({type(exc).__name__}: {exc}); use logger=csv, or check logger.wandb.*"
        ) from exc
