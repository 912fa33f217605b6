"""The Lightning loggers of a training run, from the shared ``logger`` settings: CSV always works, W&B runs
offline without an API key (see :func:`nst.tracking.wandb_mode`) and is always finished, so one failed job
cannot break a multirun. A resumed run continues its curves: the same ``metrics.csv`` and the same W&B run.
"""

from __future__ import annotations

import csv
import os
import sys
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from nst.errors import NSTError
from nst.io.files import atomic_path
from nst.tracking import wandb_dir, wandb_mode

LOGGERS = ("csv", "wandb")
#: The W&B run id of a run folder, so a resumed run logs into the same W&B run.
WANDB_ID_FILE = "wandb_id.txt"


def build_loggers(cfg: Mapping | None, save_dir: str | os.PathLike, resume_step: int | None = None) -> list[Logger]:
    """Lightning loggers from the shared ``logger`` config: a ``csv`` and/or a ``wandb`` section.

    CSV goes to ``<save_dir>/<csv.name>/metrics.csv``; W&B runs offline (under ``<save_dir>/wandb``)
    unless an API key is configured or ``wandb.mode`` says otherwise (see :func:`nst.tracking.wandb_mode`).
    ``resume_step``: the global step of the checkpoint a run resumes from; the CSV then keeps the rows
    logged before it and appends, and W&B resumes the run whose id is stored in ``save_dir``.
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
        logger = CSVLogger(save_dir=str(save_dir), name=csv.pop("name", "csv"), version="", **csv)
        if resume_step is not None:
            continue_csv(logger, resume_step)
        loggers.append(logger)
    if "wandb" in cfg:
        wb = {k: v for k, v in dict(cfg["wandb"] or {}).items() if v is not None}
        mode = wandb_mode(wb.pop("mode", None))
        if "id" not in wb:
            wb["id"] = wandb_run_id(save_dir, resume=resume_step is not None)
        wb.setdefault("resume", "allow")  # the run with this id continues if it exists (online)
        loggers.append(WandbLogger(save_dir=str(wandb_dir(save_dir)), mode=mode, **wb))
    return loggers


def continue_csv(logger: CSVLogger, before_step: int) -> None:
    """Keep the rows of the logger's ``metrics.csv`` logged before step ``before_step`` and append after them.

    Lightning's CSV writer deletes an existing ``metrics.csv``; rows after the checkpoint (a run that went on
    past its last checkpoint) are dropped, so every step appears once after the resume.
    """
    path = Path(logger.log_dir) / "metrics.csv"
    if rank_zero_only.rank != 0 or not path.is_file():
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = [row for row in reader if row.get("step") and float(row["step"]) < before_step]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")
        writer = logger.experiment  # creating Lightning's writer deletes the file: write it back below
    writer.metrics_keys = sorted(header)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=writer.metrics_keys)
        out.writeheader()
        out.writerows(rows)


def wandb_run_id(run_dir: str | os.PathLike, resume: bool) -> str:
    """The W&B run id of ``run_dir``: the stored one when resuming, else a new one, stored (rank 0 only)."""
    path = Path(run_dir) / WANDB_ID_FILE
    if resume and path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    if rank_zero_only.rank == 0:
        with atomic_path(path) as tmp:
            tmp.write_text(run_id + "\n")
    return run_id


def close_loggers(loggers: Sequence[Logger], failed: bool = False) -> None:
    """Finish the W&B run so the next job of a multirun starts its own (and a failed job is marked so)."""
    wandb = sys.modules.get("wandb")
    if any(isinstance(lg, WandbLogger) for lg in loggers) and wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)
