"""The report's pictures: E_warp per frame, style distance against E_warp, and a strip of the same frames.

Figures are drawn on matplotlib's Agg canvas (no GUI) and written atomically as PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nst.evaluation.report import MethodRow
from nst.io.files import atomic_path
from nst.io.frames import FRAME_NAME
from nst.io.image import load_image


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def warp_error_per_frame(rows: Sequence[MethodRow], path: str | Path) -> Path:
    """One line per method (the input dashed): E_t for t = 1..T-1, log scale."""
    fig = _figure(7, 4)
    ax = fig.subplots()
    for r in rows:
        if r.ok and r.warp_error_per_frame:
            style = {"color": "black", "linestyle": "--"} if r.kind == "input" else {"marker": "o", "markersize": 3}
            ax.plot(range(1, len(r.warp_error_per_frame) + 1), r.warp_error_per_frame, label=r.name, **style)
    ax.set_yscale("log")
    ax.set_xlabel("frame t (error of t against warped t-1)")
    ax.set_ylabel("E_t (warping error)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return _save(fig, Path(path))


def style_vs_warp(rows: Sequence[MethodRow], path: str | Path) -> Path:
    """A scatter, one point per method: E_warp (x) against style distance (y); lower left is better, marked."""
    fig = _figure(6, 4.5)
    ax = fig.subplots()
    points = [r for r in rows if r.ok and r.warp_error > 0 and r.style_distance > 0]
    for r in points:
        marker = "s" if r.kind == "input" else ("^" if r.kind == "fast" else "o")
        ax.scatter(r.warp_error, r.style_distance, marker=marker, s=50, label=r.name, zorder=3)
        ax.annotate(r.name, (r.warp_error, r.style_distance), textcoords="offset points", xytext=(5, 4),
                    fontsize="small")
    ax.set_xscale("log")
    ax.set_yscale("log")
    if points:
        corner = (min(r.warp_error for r in points), min(r.style_distance for r in points))
        ax.scatter(*corner, marker="*", s=220, color="gold", edgecolor="black", zorder=4)
        ax.annotate("best corner: consistent and stylized", corner, textcoords="offset points", xytext=(8, -12),
                    fontsize="small", fontweight="bold")
    ax.set_xlabel("E_warp (lower: more consistent)")
    ax.set_ylabel("style distance (lower: closer to the painting)")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, Path(path))


def strip_indices(count: int, columns: int = 3) -> list[int]:
    """``columns`` frame indices spread over ``count`` frames: first, middle(s), last."""
    if count <= columns:
        return list(range(count))
    return sorted({round(i * (count - 1) / (columns - 1)) for i in range(columns)})


def frame_strip(rows: Sequence[MethodRow], path: str | Path, frames: int, columns: int = 3) -> Path:
    """The same frames (first, middle, last) of every method that has frames, one row per method."""
    shown = [r for r in rows if r.status == "ok" and r.frames]
    indices = strip_indices(frames, columns)
    first = load_image(Path(shown[0].frames) / FRAME_NAME.format(0), max_size=None, min_side=None) if shown else None
    aspect = first.shape[-1] / first.shape[-2] if first is not None else 1.0
    width = 2.2 * aspect
    fig = _figure(max(4.0, 1.2 + width * len(indices)), max(1.0, 2.2 * len(shown)) + 0.4)
    axes = fig.subplots(max(1, len(shown)), max(1, len(indices)), squeeze=False)
    for i, r in enumerate(shown):
        for j, t in enumerate(indices):
            ax = axes[i][j]
            image = load_image(Path(r.frames) / FRAME_NAME.format(t), max_size=None, min_side=None)
            ax.imshow(image[0].permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(r.name, fontsize="medium")
            if i == 0:
                ax.set_title(f"frame {t}", fontsize="medium")
    return _save(fig, Path(path))

