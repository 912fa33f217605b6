"""The report on W&B: the table (one row per method), the plots and the grid video, in the run's summary too."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nst.evaluation.report import MethodRow

COLUMNS = ["method", "kind", "status", "reason", "warp_error", "warp_error_dis", "style_distance", "content_distance",
           "seconds_per_frame", "train_seconds"]


def _cell(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def log_report(run: Any, rows: Sequence[MethodRow], pictures: Mapping[str, Path], grid: Path | None) -> None:
    """Log the evaluation to the W&B ``run`` and finish it."""
    import wandb

    try:
        table = wandb.Table(columns=COLUMNS, data=[
            [r.name, r.kind, r.status, r.reason, *(_cell(getattr(r, c)) for c in COLUMNS[4:])] for r in rows
        ])
        media: dict[str, Any] = {"report": table, **{k: wandb.Image(str(p)) for k, p in pictures.items()}}
        if grid is not None and grid.is_file():
            media["grid"] = wandb.Video(str(grid), format=grid.suffix[1:].lower())
        run.log(media)
        run.summary.update({f"{r.name}/{c}": _cell(getattr(r, c)) for r in rows if r.status == "ok"
                            for c in COLUMNS[4:] if getattr(r, c) is not None})
    finally:
        run.finish()
