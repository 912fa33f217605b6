"""The evaluation report: one row per method, as ``report.md`` and ``report.json``, and the "which method?" answer.

The numbers are those of :mod:`nst.metrics` (E_warp of Lai et al. 2018 with the input's flows and masks, style
and content distance), measured on every method's lossless frames at the same working size. E_warp's flow is
named in the report (``metrics_flow``): one that the optimizer's methods did not minimise their temporal loss
under; DIS's E_warp may follow as a second column. The input clip is a reference row: its own E_warp is the floor
a flow estimator allows, its style distance how far the raw video is from the painting (or the blend).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nst.io.files import atomic_path

#: A method may keep the style this much worse than ``naive``'s and still be recommended as the most consistent.
STYLE_TOLERANCE = 1.5


@dataclass
class MethodRow:
    """What one method produced and scored. ``kind``: ``input`` (the reference), ``optimizer`` or ``fast``."""

    name: str
    kind: str
    status: str = "ok"  # ok | failed
    reason: str = ""
    warp_error: float = math.nan
    warp_error_per_frame: list[float] = field(default_factory=list)
    warp_error_dis: float = math.nan  # E_warp under DIS flows, when the headline flow is another one
    style_distance: float = math.nan
    content_distance: float = math.nan
    seconds_per_frame: float | None = None
    train_seconds: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    frames: str | None = None  # folder of the lossless frames at the working size
    video: str | None = None  # the stylized video with the input's audio

    @property
    def ok(self) -> bool:
        return self.status == "ok" and math.isfinite(self.warp_error) and math.isfinite(self.style_distance)

    def fail(self, reason: str) -> MethodRow:
        self.status, self.reason = "failed", reason
        return self


def find(rows: Sequence[MethodRow], name: str) -> MethodRow | None:
    return next((r for r in rows if r.name == name and r.ok), None)


def _ratio(value: float, reference: MethodRow | None) -> float:
    if reference is None or not reference.warp_error > 0:
        return math.nan
    return value / reference.warp_error


def which_method(rows: Sequence[MethodRow]) -> str:
    """The most consistent method whose style distance stays within 1.5x of ``naive``'s, and the fastest one."""
    methods = [r for r in rows if r.kind != "input" and r.ok]
    if not methods:
        return "No method finished, so there is nothing to recommend; see the reasons in the table."
    naive = find(rows, "naive")
    if naive is not None:
        keep = [r for r in methods if r.style_distance <= STYLE_TOLERANCE * naive.style_distance]
        rule = f"keeping the style distance within {STYLE_TOLERANCE:g}x of naive's ({naive.style_distance:.3g})"
    else:
        keep, rule = methods, "(naive did not run, so the style is not checked)"
    best = min(keep, key=lambda r: r.warp_error)
    text = [f"**Most consistent:** `{best.name}` has the lowest E_warp ({best.warp_error:.3g}"]
    text[-1] += f", {_ratio(best.warp_error, naive):.3g}x naive's)" if naive is not None else ")"
    text[-1] += f" among the methods {rule}."
    dropped = sorted(set(r.name for r in methods) - set(r.name for r in keep))
    if dropped:
        text.append(f"Left out for losing too much style: {', '.join(f'`{n}`' for n in dropped)}.")
    timed = [r for r in methods if r.seconds_per_frame is not None]
    if timed:
        fastest = min(timed, key=lambda r: r.seconds_per_frame)
        line = f"**Fastest:** `{fastest.name}` at {fastest.seconds_per_frame:.3g} s per frame"
        if fastest.train_seconds:
            line += f" (after {fastest.train_seconds:.0f} s of training, paid once per style)"
        text.append(line + f", E_warp {fastest.warp_error:.3g}.")
    return " ".join(text)


def _number(value: float | None, digits: str = ".3g") -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, digits)


def _settings(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items()).replace("|", "/")


def _styles(info: Mapping[str, Any]) -> str:
    """The style image's name, or a blend's names with their weights."""
    styles = info["style"] if isinstance(info["style"], (list, tuple)) else [info["style"]]
    names = [Path(s).name for s in styles]
    if len(names) > 1 and info.get("style_blend") is not None:
        names = [f"{n} ({w:g})" for n, w in zip(names, info["style_blend"])]
    return " + ".join(names)


def markdown(rows: Sequence[MethodRow], info: Mapping[str, Any]) -> str:
    """``report.md``: the settings, the table, the plots and the answer to "which method?"."""
    naive, reference = find(rows, "naive"), next((r for r in rows if r.kind == "input" and r.ok), None)
    flow = info.get("metrics_flow", "dis")
    dis = any(math.isfinite(r.warp_error_dis) for r in rows)  # the second column, when measured
    used = f"; the optimizer's methods used {info['optimizer_flow']} flows" if info.get("optimizer_flow") else ""
    lines = [
        f"# Evaluation: {Path(info['content']).name} in the style of {_styles(info)}",
        "",
        f"{info['frames']} frames at {info['width']}x{info['height']}, encoder `{info['encoder']}`, "
        f"device {info['device']}. E_warp: Lai et al. 2018's warping error with **{flow}** flows and reliability "
        f"masks of the input (see nst/metrics.py{used})" + ("; E_warp (dis): the same with DIS flows" if dis else "")
        + ". Style distance: Gram matrices relu1_1..relu5_1 against the style image (a blend: the blend-weighted "
        "mean of their Gram matrices); content distance: relu4_2 against the input frame. Lower is better for all.",
        "",
        f"| method | status | E_warp ({flow}) | × input | × naive | " + ("E_warp (dis) | " if dis else "")
        + "style distance | content distance | s/frame | training s | settings |",
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if dis else ""),
    ]
    for r in rows:
        status = "ok" if r.status == "ok" else f"failed: {r.reason}".replace("|", "/")
        to_input = _ratio(r.warp_error, reference) if r.kind != "input" else 1.0
        lines.append(
            f"| {r.name} | {status} | {_number(r.warp_error)} | {_number(to_input)} | "
            f"{_number(_ratio(r.warp_error, naive))} | " + (f"{_number(r.warp_error_dis)} | " if dis else "")
            + f"{_number(r.style_distance)} | "
            f"{_number(r.content_distance)} | {_number(r.seconds_per_frame)} | {_number(r.train_seconds, '.0f')} | "
            f"{_settings(r.settings)} |"
        )
    lines += ["", "## Which method?", "", which_method(rows), ""]
    for title, name in (("E_warp per frame", "warp_error_per_frame.png"),
                        ("Style distance against E_warp", "style_vs_warp.png"),
                        ("The same frames from every method", "frame_strip.png")):
        if (Path(info["run_dir"]) / name).is_file():
            lines += [f"![{title}]({name})", ""]
    if info.get("grid"):
        lines += [f"All methods side by side, with the input's audio: [{Path(info['grid']).name}]"
                  f"({Path(info['grid']).name})", ""]
    return "\n".join(lines)


def write_report(run_dir: str | Path, rows: Sequence[MethodRow], info: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.json`` atomically into ``run_dir``; returns their paths."""
    run_dir = Path(run_dir)
    naive = find(rows, "naive")
    data = {
        **{k: v for k, v in info.items() if k != "run_dir"},
        "which_method": which_method(rows),
        "methods": [
            {**_finite(asdict(r)), "warp_error_to_naive": _finite_value(_ratio(r.warp_error, naive))} for r in rows
        ],
    }
    md, js = run_dir / "report.md", run_dir / "report.json"
    with atomic_path(md) as tmp:
        tmp.write_text(markdown(rows, {**info, "run_dir": run_dir}))
    with atomic_path(js) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
    return md, js


def _finite_value(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: missing numbers become null."""
    return {k: [_finite_value(x) for x in v] if isinstance(v, list) else _finite_value(v) for k, v in row.items()}
