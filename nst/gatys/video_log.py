"""What a video run reports as it goes: a progress bar over frames, one CSV row per frame, and W&B when on.

The CSV (``frames.csv`` in the run folder) is appended one row per finished frame, so a stopped run keeps
its rows; a resumed run first drops the rows of frames it will compute again. Column names are the ones
both loops log (``loss/content``, ``loss/style``, ``loss/temporal``, ``loss/tv``, ``loss/total``,
``metrics/warp_error``), so a dashboard compares a video run with any other.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nst.errors import NSTError
from nst.gatys.video import FrameRecord
from nst.io.files import atomic_path
from nst.tracking import start_wandb

FRAMES_CSV = "frames.csv"
LOSSES = ("loss/content", "loss/style", "loss/temporal", "loss/tv", "loss/total")
COLUMNS = ("step", "pass", "frame", *LOSSES, "iterations", "seconds", "flow_wait", "metrics/warp_error")


def record_row(record: FrameRecord, frames: int) -> dict[str, Any]:
    """A frame's CSV / W&B row; ``step`` counts frames over all passes (pass * frames + processing step)."""
    row: dict[str, Any] = {
        "step": record.pass_index * frames + record.step, "pass": record.pass_index, "frame": record.frame,
        **{name: record.losses.get(name, 0.0) for name in LOSSES},
        "iterations": record.iterations, "seconds": round(record.seconds, 4), "flow_wait": round(record.flow_wait, 4),
        "metrics/warp_error": record.warp_error,
    }
    return row


class FrameLog:
    """Progress bar, ``frames.csv`` and (optionally) W&B rows for every finished frame.

    Args:
        folder: the run folder.
        frames / passes: the job's size; ``done``: frames (over all passes) finished before this call.
        logger: the ``logger`` config as data (``csv`` and/or ``wandb`` keys; empty: no CSV, no W&B).
        config: the resolved config, for W&B.
    """

    def __init__(
        self, folder: str | os.PathLike, frames: int, passes: int, done: int,
        logger: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None, progress: bool = True,
    ):
        logger = dict(logger or {})
        unknown = sorted(set(logger) - {"csv", "wandb"})
        if unknown:
            raise NSTError(f"logger {', '.join(unknown)} is not supported by optimize.py; use csv, wandb or none")
        self.folder, self.frames = Path(folder), frames
        self.csv = self.folder / FRAMES_CSV if logger else None
        self.wandb_settings = logger.get("wandb") if "wandb" in logger else None
        self.config = dict(config or {})
        self.run: Any = None
        if self.csv is not None:
            self._keep_rows(done)
        total = frames * passes
        self.bar = tqdm(total=total, initial=done, desc="video", unit="frame", dynamic_ncols=True, file=sys.stderr,
                        disable=not progress)

    def _keep_rows(self, done: int) -> None:
        """Drop rows of frames that will be computed again (a resume), keeping the header."""
        rows: list[list[str]] = []
        if self.csv.is_file():
            with open(self.csv, newline="") as f:
                rows = [r for r in csv.reader(f)][1:]
            rows = [r for r in rows if r and r[0].isdigit() and int(r[0]) < done]
        with atomic_path(self.csv) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows(rows)

    def __call__(self, record: FrameRecord) -> None:
        row = record_row(record, self.frames)
        if self.csv is not None:
            with open(self.csv, "a", newline="") as f:
                csv.writer(f).writerow([_cell(row[c]) for c in COLUMNS])
        if self.wandb_settings is not None:
            if self.run is None:
                self._start()
            self.run.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])
        shown = {"s": f"{record.seconds:.1f}", "it": record.iterations}
        shown.update({k.removeprefix("loss/"): f"{v:.3g}" for k, v in record.losses.items() if k in LOSSES[:3]})
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def _start(self) -> None:
        self.run = start_wandb(self.wandb_settings or {}, self.folder, self.config, job_type="optimize_video")

    def finish(self, summary: Mapping[str, float] | None = None, video: Path | None = None) -> None:
        """Close the bar; with W&B on, log the metric table and the stylized video, and finish the run.

        ``summary=None`` marks a failed or interrupted run.
        """
        self.bar.close()
        if self.wandb_settings is None:
            return
        if self.run is None and summary is not None:
            self._start()  # a finished job resumed with nothing left to compute still reports its metrics
        if self.run is None:
            return
        try:
            if summary is not None:
                import wandb

                self.run.summary.update(dict(summary))
                if video is not None and video.is_file() and video.suffix.lower() in (".mp4", ".gif", ".webm"):
                    self.run.log({"video": wandb.Video(str(video), format=video.suffix[1:].lower())})
        finally:
            self.run.finish(exit_code=0 if summary is not None else 1)
            self.run = None


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)
