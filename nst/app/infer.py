"""The body of infer.py: stylize images, videos and folders with a trained fast network, or export it.

The command line and the web page (:mod:`nst.web`) both call :func:`infer`, so a job from the page is the same
run as ``python infer.py`` with the same config."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nst.app.config import style_choice
from nst.app.device import resolve_device
from nst.errors import NSTError
from nst.fastnet.infer.engines import make_engine
from nst.fastnet.infer.jobs import InferSettings, Summary, count_frames, plan_jobs, run_jobs
from nst.fastnet.weights import load_weights

#: ``export_styles``: what the export of a multi-style network keeps.
EXPORT_STYLES = ("all", "one")


def export(cfg: DictConfig) -> None:
    """``export=onnx|torchscript``: write the network to ``cfg.output``, checked against PyTorch.

    A multi-style network exports every style by default (``export_styles=all``: a second input ``style`` picks or
    blends them per image, Dumoulin et al. 2017); ``export_styles=one`` folds the ``style=`` choice in, one input."""
    from nst.fastnet.infer.portable import describe_inputs, export_model

    styles = cfg.get("export_styles", "all")
    if styles not in EXPORT_STYLES:
        raise NSTError(f"export_styles={styles} is not one of {', '.join(EXPORT_STYLES)}; use export_styles=all "
                       "(every style, chosen by a 'style' input) or export_styles=one (the style= choice only)")
    net = load_weights(cfg.weights)
    if styles == "one":
        net = net.single_style(style_choice(cfg.get("style")))
    output = Path(cfg.output)
    if output.suffix.lower() not in (".onnx", ".pt", ".ts", ".torchscript"):
        output = output.with_suffix(".onnx" if cfg.export == "onnx" else ".pt")
    path, difference = export_model(net, output, str(cfg.export))
    check = "not checked (pip install onnxruntime)" if difference is None else f"mean |diff| {difference:.1e}"
    print(f"wrote {path} ({cfg.export}, {describe_inputs(net)}, dynamic batch/height/width, {check} against PyTorch)")


def infer(cfg: DictConfig, on_frames: Callable[[int], None] | None = None,
          on_start: Callable[[int | None], None] | None = None) -> Summary | None:
    """Stylize ``cfg.input`` into ``cfg.output`` (or export the network), print what was written and how fast;
    returns the summary (None for an export).

    ``on_start(total frames)`` is called once the work is planned, ``on_frames(n)`` after every ``n`` frames (an
    exception it raises stops the run with no output left behind)."""
    if OmegaConf.is_missing(cfg, "weights") or not cfg.weights:
        raise NSTError("infer.py needs weights=PATH: the shipped weights/six_styles.pt, the .pt file train.py "
                       "exports, or a train.py checkpoints/*.ckpt")
    if cfg.get("export"):
        return export(cfg)
    if cfg.batch_size < 1:
        raise NSTError(f"batch_size must be at least 1, got {cfg.batch_size}")
    start = time.perf_counter()
    device = resolve_device(cfg.device)
    jobs = plan_jobs(cfg.input, cfg.output)
    net = load_weights(cfg.weights, map_location=device).single_style(style_choice(cfg.get("style")))
    total = count_frames(jobs)
    if on_start is not None:
        on_start(total)
    engine = make_engine(net, device, cfg.engine, cfg.precision, cfg.compile, cfg.batch_size, total)
    settings = InferSettings(cfg.batch_size, cfg.max_size, cfg.side_by_side, cfg.crf, cfg.audio)
    setup = time.perf_counter() - start
    summary = run_jobs(engine, jobs, settings, total, on_frames)
    more = f" ... ({len(summary.outputs)} in all)" if len(summary.outputs) > 3 else ""
    shown = ", ".join(map(str, summary.outputs[:3])) + more
    print(f"wrote {shown}")
    print(f"stylized {summary.frames} frame(s) in {summary.seconds:.2f} s: {summary.fps:.2f} frames/s "
          f"({engine.name}, {engine.precision}, {device.type}, batch {cfg.batch_size}; setup {setup:.1f} s)")
    if cfg.metrics:  # the outputs are written: a failing measurement is a warning, not a failed run
        from nst.app.closing_metrics import measure_infer_jobs

        measure_infer_jobs(jobs, cfg)
    return summary
