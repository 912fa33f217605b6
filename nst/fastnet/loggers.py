"""The Lightning loggers of a training run, from the shared ``logger`` settings: CSV always works, W&B runs
offline without an API key (see :func:`nst.tracking.wandb_mode`) and is always finished, so one failed job
cannot break a multirun.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

from nst.errors import NSTError
from nst.tracking import wandb_dir, wandb_mode

LOGGERS = ("csv", "wandb")


def build_loggers(cfg: Mapping | None, save_dir: str | os.PathLike) -> list[Logger]:
    """Lightning loggers from the shared ``logger`` config: a ``csv`` and/or a ``wandb`` section.

    CSV goes to ``<save_dir>/<csv.name>/metrics.csv``; W&B runs offline (under ``<save_dir>/wandb``)
    unless an API key is configured or ``wandb.mode`` says otherwise (see :func:`nst.tracking.wandb_mode`).
    """
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(LOGGERS))
    if unknown:
        raise NSTError(
            f"unknown logger section(s) {unknown}; use logger=csv, logger=wandb, logger=[csv,wandb] or logger=none"
        )
    loggers: list[Logger] = []
    if "csv" in cfg:
        csv = dict(cfg["csv"] or {})
        loggers.append(CSVLogger(save_dir=str(save_dir), name=csv.pop("name", "csv"), version="", **csv))
    if "wandb" in cfg:
        wb = {k: v for k, v in dict(cfg["wandb"] or {}).items() if v is not None}
        mode = wandb_mode(wb.pop("mode", None))
        loggers.append(WandbLogger(save_dir=str(wandb_dir(save_dir)), mode=mode, **wb))
    return loggers


def close_loggers(loggers: Sequence[Logger], failed: bool = False) -> None:
    """Finish the W&B run so the next job of a multirun starts its own (and a failed job is marked so)."""
    wandb = sys.modules.get("wandb")
    if any(isinstance(lg, WandbLogger) for lg in loggers) and wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)
