"""The metrics a command computes after its outputs are written (optimize.py's videos, infer.py ``metrics=true``):
which encoder measures the style and content distances, and what a failure does instead of failing the run.

The outputs are finished by then, so a failing measurement (an encoder that cannot be loaded, an unreadable style
image) is one warning line naming the ``python -m nst.metrics`` command that computes the same numbers afterwards.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from omegaconf import DictConfig

from nst.encoders.vgg import encoder_spec
from nst.errors import NSTError
from nst.evaluation.measure import COMMAND, measure, print_table, warp_only, write_json


def metric_encoder(cfg: DictConfig) -> tuple[str, str]:
    """(arch, weights) of the style and content distances: ``metrics_vgg`` when set (``vgg16:hed``, or weights
    alone, see :func:`nst.encoders.vgg.encoder_spec`), else the run's own encoder, ``vgg.arch`` with ``vgg.weights``."""
    chosen = cfg.get("metrics_vgg")
    if chosen or cfg.get("vgg") is None:
        return encoder_spec(str(chosen or "imagenet"))
    return str(cfg.vgg.arch), str(cfg.vgg.weights)


def metrics_command(args: Mapping[str, object]) -> str:
    """The ``python -m nst.metrics key=value ...`` command line of ``args`` (None values left out)."""
    return " ".join([COMMAND, *(shlex.quote(f"{k}={v}") for k, v in args.items() if v is not None)])


def warn_metrics_failed(exc: BaseException, args: Mapping[str, object] | None = None, more: int = 0) -> None:
    """One warning line on stderr: why the metrics were not computed and, with ``args``, the command computing
    them (``more``: how many other outputs need the same command with their own input and output)."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    hint = f"; the outputs are written, compute the metrics with: {metrics_command(args)}" if args else ""
    hint += f" (and so for each of the other {more} videos)" if args and more else ""
    print(f"warning: metrics not computed ({reason}){hint}", file=sys.stderr, flush=True)


def measure_infer_jobs(jobs: list, cfg: DictConfig) -> Path | None:
    """infer.py's ``metrics=true``: every video written, measured by :mod:`nst.evaluation.measure` (E_warp; with
    ``metrics_style`` the distances too), each table printed, ``{output: record}`` written to the output folder's
    metrics.json; a failure is one warning line, never an error."""
    arch, weights = metric_encoder(cfg)
    videos = [job for job in jobs if job.video]
    try:
        if not videos:
            raise NSTError("metrics=true measures videos, and the input has none; drop metrics=true")
        reports = {}
        for job in videos:
            if cfg.metrics_style:
                _, report = measure({"input": str(job.source), "output": str(job.target),
                                     "style.image": str(cfg.metrics_style), "vgg.weights": f"{arch}:{weights}"},
                                    write=False)
                report.pop("json")
            else:
                report = warp_only(job.source, job.target)
            print_table(report, f"metrics of {job.target}")
            reports[str(job.target)] = report
        output = Path(cfg.output)
        path = write_json(reports, (output if output.is_dir() else output.parent) / "metrics.json")
        print(f"wrote {path}", flush=True)
        return path
    except Exception as exc:  # the stylized files are written: a failed measurement must not fail the run
        args = videos and {"input": videos[0].source, "output": videos[0].target,
                           "style.image": cfg.metrics_style or "PAINTING.jpg", "vgg.arch": arch, "vgg.weights": weights}
        warn_metrics_failed(exc, args or None, max(0, len(videos) - 1))
        return None
