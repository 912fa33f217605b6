"""Callbacks of the Gatys loop (:mod:`nst.gatys.loop`): progress bar, progress images, loss curves (CSV + PNG)
and W&B.

:func:`build_callbacks` reads the ``logger`` settings as data: ``csv`` or ``wandb`` write the curves and their
plot into the run folder, and ``wandb`` logs the same to Weights & Biases too. :class:`WandbRun` is the only
place this loop touches W&B; it never asks for a login (offline without an API key, see
:func:`nst.tracking.wandb_mode`) and always finishes its run, so a failed job cannot break a multirun.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from tqdm import tqdm

from nst import color
from nst.errors import NSTError
from nst.gatys.loop import STOP_REASONS, IterationInfo, LoopCallback, StylizeResult
from nst.io.files import atomic_path
from nst.io.image import save_image, tensor_to_pil
from nst.tracking import start_wandb

CURVES_CSV = "loss_curves.csv"
CURVES_PNG = "loss_curves.png"
PROGRESS_DIR = "progress"


class ProgressBar(LoopCallback):
    """A tqdm bar over the iteration budget, showing the current weighted losses."""

    def __init__(self, total: int, desc: str = "optimize"):
        self._bar = tqdm(total=total, desc=desc, unit="it", dynamic_ncols=True, file=sys.stderr)

    def on_iteration(self, info: IterationInfo) -> None:
        self._bar.set_postfix({k.removeprefix("loss/"): f"{v:.3g}" for k, v in info.losses.items()}, refresh=False)
        self._bar.update(1)

    def on_end(self, result: StylizeResult | None) -> None:
        self._bar.close()


def write_curves_csv(history: Mapping[str, Sequence[float]], path: str | os.PathLike) -> Path:
    """Write ``iteration`` and one column per metric, one row per iteration, atomically."""
    path = Path(path)
    names = list(history)
    rows = zip(*(history[name] for name in names))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["iteration", *names])
        for iteration, row in enumerate(rows):
            writer.writerow([iteration, *(repr(float(v)) for v in row)])
    return path


def loss_figure(history: Mapping[str, Sequence[float]], title: str = "") -> Figure:
    """The weighted loss terms per iteration on a log scale; terms that stayed 0 are left out."""
    fig = Figure(figsize=(7, 4), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, values in history.items():
        if not any(v > 0 for v in values):
            continue
        if name == "loss/total":  # a wide translucent band behind the terms, which it often equals
            ax.plot(range(len(values)), values, label=name, color="black", linewidth=4.0, alpha=0.25, zorder=1)
        else:
            ax.plot(range(len(values)), values, label=name, linewidth=1.4, zorder=2)
    ax.set_yscale("log")
    ax.set_xlabel("iteration (loss evaluations)")
    ax.set_ylabel("weighted loss")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    ax.set_title(title, fontsize="medium")
    return fig


def _title(result: StylizeResult) -> str:
    reason = STOP_REASONS.get(result.stop_reason, result.stop_reason)
    return f"{result.iterations} iterations, {reason}, {result.seconds:.1f} s"


def save_loss_plot(history: Mapping[str, Sequence[float]], path: str | os.PathLike, title: str = "") -> Path:
    """Render :func:`loss_figure` to a PNG file, atomically (matplotlib's Agg canvas, no GUI needed)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        loss_figure(history, title).savefig(tmp, format="png")
    return path


class LossCurves(LoopCallback):
    """Writes the curves as ``loss_curves.csv`` and their plot as ``loss_curves.png`` when the run succeeds."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def on_end(self, result: StylizeResult | None) -> None:
        if result is not None:
            write_curves_csv(result.history, self.folder / CURVES_CSV)
            save_loss_plot(result.history, self.folder / CURVES_PNG, _title(result))


class SaveProgress(LoopCallback):
    """Writes the image every ``every`` iterations as ``<folder>/progress/iter_<n>.png`` (n: iterations done),
    atomically, so a user can watch it form; a coarse-to-fine run writes its smaller levels at their size.

    ``color_source``: the content, for ``preserve_color`` runs, whose loop optimises luminance only; each
    image then gets the content's colours back (Gatys et al. 2016b) instead of being written gray.
    """

    def __init__(self, folder: str | os.PathLike, every: int, color_source: torch.Tensor | None = None):
        if int(every) < 1:
            raise NSTError(f"save_every must be a positive number of iterations (or 0: off), got {every}")
        self.folder = Path(folder) / PROGRESS_DIR
        self.every = int(every)
        self.color_source = color_source

    def path(self, done: int) -> Path:
        """The file of the image after ``done`` iterations."""
        return self.folder / f"iter_{done:07d}.png"

    def on_iteration(self, info: IterationInfo) -> None:
        done = info.iteration + 1
        if done % self.every:
            return
        image = info.image.clamp(0, 1)
        if self.color_source is not None:
            source = self.color_source.to(image.device)
            if source.shape[-2:] != image.shape[-2:]:
                source = F.interpolate(source, size=image.shape[-2:], mode="bilinear", antialias=True)
            image = color.restore_color(image, source)
        save_image(image, self.path(done))


class WandbRun(LoopCallback):
    """Logs every iteration's losses, then the result image, the loss plot and a summary, to W&B.

    The run starts at the first iteration, so a job that fails on its inputs leaves no W&B run behind.
    Offline runs land in ``<dir>/wandb/offline-run-*``; ``wandb sync`` uploads them later.
    """

    def __init__(self, settings: Mapping[str, Any], folder: str | os.PathLike, config: Mapping[str, Any]):
        self.settings = dict(settings)
        self.folder = Path(folder)
        self.config = dict(config)
        self.run: Any = None

    def _start(self) -> None:
        self.run = start_wandb(self.settings, self.folder, self.config, job_type="optimize")

    def on_iteration(self, info: IterationInfo) -> None:
        if self.run is None:
            self._start()
        self.run.log(info.losses, step=info.iteration)

    def on_end(self, result: StylizeResult | None) -> None:
        if self.run is None:
            return
        try:
            if result is not None:
                import wandb

                buffer = io.BytesIO()
                loss_figure(result.history, _title(result)).savefig(buffer, format="png")
                buffer.seek(0)
                images = {"stylized": tensor_to_pil(result.image), "loss_curves": Image.open(buffer)}
                self.run.log({k: wandb.Image(v) for k, v in images.items()}, step=result.iterations - 1)
                self.run.summary.update(
                    {"iterations": result.iterations, "stop_reason": result.stop_reason, "seconds": result.seconds,
                     **result.final_losses()}
                )
        finally:
            self.run.finish(exit_code=0 if result is not None else 1)
            self.run = None


def build_callbacks(
    logger: Mapping[str, Any] | None,
    folder: str | os.PathLike,
    config: Mapping[str, Any],
    total: int,
    progress: bool = True,
    save_every: int = 0,
    color_source: torch.Tensor | None = None,
) -> list[LoopCallback]:
    """The loop's callbacks for a ``logger`` config: with ``csv`` and/or ``wandb`` the curves (CSV + PNG) go
    into the run folder, and with ``wandb`` to W&B as well; an empty config (``logger=none``) writes neither.
    ``save_every`` > 0 adds :class:`SaveProgress` (``color_source``: see there)."""
    logger = dict(logger or {})
    unknown = sorted(set(logger) - {"csv", "wandb"})
    if unknown:
        raise NSTError(f"logger {', '.join(unknown)} is not supported by optimize.py; use logger=csv, wandb or none")
    callbacks: list[LoopCallback] = [ProgressBar(total)] if progress else []
    if save_every:
        callbacks.append(SaveProgress(folder, save_every, color_source))
    if logger:  # the run folder keeps its own record whichever trackers are on
        callbacks.append(LossCurves(folder))
    if "wandb" in logger:
        callbacks.append(WandbRun(logger["wandb"] or {}, folder, config))
    return callbacks
