"""optimize.py for videos: the wiring from the config to :func:`nst.gatys.video.stylize_video` and back to files.

``python optimize.py content=clip.mp4`` lands here when ``content`` is a video file, a GIF or a folder of
frames (:func:`nst.io.video.is_video`). The run folder keeps ``input/``, ``flow/``, ``frames/`` (and
``passes/``), so rerunning the same command with ``hydra.run.dir=<run folder>`` resumes at the first
unfinished frame; at the end the output video is written through the foundation's writer, then the metric
table (E_warp of input and output, style and content distance) is printed and written to ``metrics.json``. The
distances use the run's own encoder (``vgg``) or ``metrics_vgg``; a failing measurement is one warning line.
E_warp's flow is ``metrics_flow`` (auto: one the temporal loss did not use, see :mod:`nst.flow.named`).
"""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from nst.app.builders import build_criterion
from nst.app.closing_metrics import metric_encoder, warn_metrics_failed
from nst.app.config import build, plain, style_paths
from nst.app.device import check_precision, resolve_device
from nst.app.run_info import resolved_dict, save_run_info
from nst.errors import NSTError
from nst.evaluation.measure import print_table, record, write_json
from nst.flow.cache import VideoFlows
from nst.flow.named import build_estimator, metrics_flow
from nst.gatys.loop import LoopSettings
from nst.gatys.video import FrameRecord, VideoSettings, stylize_video
from nst.gatys.video_log import FrameLog
from nst.gatys.video_store import InputFrames, PassFolders, check_job, content_identity, style_digests, working_size
from nst.io.files import refuse_overwriting
from nst.io.frames import check_frame_folder
from nst.io.image import IMAGE_SUFFIXES, load_style_images
from nst.io.media import VideoReader
from nst.io.video import VIDEO_SUFFIXES, open_video, open_writer
from nst.metrics import evaluate_video, metric_criterion

#: Output formats the writer makes; another input suffix (.avi) gets an mp4.
_WRITABLE = (".mp4", ".mov", ".mkv", ".m4v", ".webm", ".gif")
#: Keys of ``video`` that change no finished frame, so a rerun may change them and still resume.
_FREE_VIDEO_KEYS = ("max_frames", "side_by_side", "audio", "crf", "metrics", "retries")


def output_path(cfg: DictConfig, content: Path, run_dir: Path) -> Path:
    """``output``, or when it is left at the still-image default, ``<run>/stylized`` + the input's format."""
    output = Path(cfg.output)
    if output == run_dir / "stylized.png":
        suffix = content.suffix.lower() if content.suffix.lower() in _WRITABLE else ".mp4"
        output = run_dir / f"stylized{suffix}"
    return output


def side_by_side_path(output: Path) -> Path:
    """``clip.mp4`` -> ``clip_side_by_side.mp4``; a frame folder ``out`` -> ``out_side_by_side``."""
    return output.with_name(f"{output.stem}_side_by_side{output.suffix}")


def job_settings(cfg: DictConfig, frames: int, passes: int, identity: dict[str, Any]) -> dict[str, Any]:
    """What decides the finished frames; a resumed run must have the same (``video.max_frames`` may grow).

    ``identity``: the content's size and first-frame digest (:func:`~nst.gatys.video_store.content_identity`).
    """
    video = {k: v for k, v in plain(cfg.video).items() if k not in _FREE_VIDEO_KEYS}
    styles = style_paths(cfg.style)
    job = {
        "content": str(Path(cfg.content).resolve()), **identity, "style": [str(p.resolve()) for p in styles],
        "style_digest": style_digests(styles), "style_size": cfg.style.get("size"),
        "style_blend": plain(cfg.style.blend), "max_size": cfg.max_size, "init": cfg.init, "seed": cfg.seed,
        "iterations": cfg.iterations, "early_stop": plain(cfg.early_stop), "precision": cfg.precision,
        "loss": plain(cfg.loss), "optimizer": plain(cfg.optimizer), "vgg": plain(cfg.vgg), "flow": plain(cfg.flow),
        "video": video,
    }
    if passes > 1:  # backward passes number their files from the last frame: the count is part of the job
        job["frames"] = frames
    return job


def check_video_settings(cfg: DictConfig) -> None:
    """Refuse, in one line, the still-image settings that a video run would otherwise ignore."""
    if cfg.preserve_color:
        raise NSTError("preserve_color=true is not supported for videos yet; leave it false")
    if cfg.pyramid.levels != 1 or cfg.pyramid.iterations is not None:
        given = "null" if cfg.pyramid.iterations is None else plain(cfg.pyramid.iterations)
        raise NSTError(f"pyramid.levels={cfg.pyramid.levels}, pyramid.iterations={given}: "
                       "coarse to fine is not supported for videos yet; leave pyramid.levels=1, iterations=null")
    if cfg.save_every:
        raise NSTError(f"save_every={cfg.save_every} is not supported for videos yet; leave it 0")


def check_outputs(cfg: DictConfig, outputs: list[Path], content: Path, run_dir: Path) -> None:
    """Refuse, before any work, outputs that would write over the content, a style image or the run's own
    frames, and frame folders holding files the frame writer did not make (unless ``overwrite=true``)."""
    kept = [run_dir / "input", run_dir / "frames", run_dir / "passes"]
    for output in outputs:
        suffix = output.suffix.lower()
        if suffix in IMAGE_SUFFIXES or (suffix in VIDEO_SUFFIXES and suffix not in _WRITABLE):
            raise NSTError(f"cannot write the video to {output}: use .mp4, .mov, .mkv, .webm or .gif, or a folder "
                           "name for numbered PNG frames")
        folder = suffix not in _WRITABLE
        refuse_overwriting(output, [content, *style_paths(cfg.style), *kept], folder=folder)
        if folder:
            check_frame_folder(output, cfg.overwrite)


def resume_command(run_dir: Path) -> str:
    """The command line that resumes this run: the same overrides, in the same run folder."""
    from hydra.core.hydra_config import HydraConfig

    given = HydraConfig.get().overrides.task if HydraConfig.initialized() else sys.argv[1:]
    overrides = [o for o in given if not o.startswith("hydra.run.dir=")]
    args = " ".join(shlex.quote(a) for a in [*overrides, f"hydra.run.dir={run_dir}"])
    return f"python {Path(sys.argv[0]).name} {args}"


def optimize_video(cfg: DictConfig, on_step: Callable[[int, int], None] | None = None) -> Path:
    """Stylize the video of ``cfg.content``; returns the output path. See the module docstring.

    ``on_step(done, total)`` is called after each finished frame (frames of all passes). With ``video.chunk`` set
    (a job of :func:`nst.app.chunks.optimize_chunked`, for ``video.chunks > 1``), the run writes its frames and
    leaves the encoding to the stitch.
    """
    v = cfg.video
    run_dir = Path(cfg.paths.output_dir)
    content = Path(cfg.content)
    check_video_settings(cfg)
    reader = open_video(content, v.start, v.max_frames, v.every, folder_fps=v.fps)
    output = output_path(cfg, content, run_dir)
    check_outputs(cfg, [output, side_by_side_path(output)] if v.side_by_side else [output], content, run_dir)
    video = VideoSettings(v.method, v.first_frame_iterations, plain(v.long_term), v.passes, v.blend, cfg.init,
                          cfg.seed, v.photometric)
    settings = LoopSettings(
        iterations=cfg.iterations, optimizer=build(cfg.optimizer),
        patience=cfg.early_stop.patience if cfg.early_stop.enabled else None, tolerance=cfg.early_stop.tolerance,
        precision=cfg.precision,
    )
    size = working_size(reader.width, reader.height, cfg.max_size)
    metrics_flow(cfg.get("metrics_flow", "auto"), None)  # a wrong name fails now, not after every frame is done
    resumed = check_job(run_dir, job_settings(cfg, reader.frame_count, video.pass_count, content_identity(reader)))
    save_run_info(cfg, run_dir)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    check_precision(device, cfg.precision)
    style_size = cfg.style.get("size") or max(size)  # default: the frames' long side, as for stills
    style_images = load_style_images(style_paths(cfg.style), style_size)
    criterion = build_criterion(cfg).to(device)
    inputs = InputFrames(reader, run_dir / "input", size, cfg.overwrite)
    store = PassFolders(run_dir, inputs.count, video.pass_count, cfg.overwrite)
    pass_index, step = store.resume_point()
    done = pass_index * inputs.count + step
    if resumed:
        where = f"resuming at step {step} of pass {pass_index}" if pass_index < store.passes else "nothing left to do"
        print(f"{run_dir}: {done} of {inputs.count * store.passes} frames finished; {where}", file=sys.stderr)
    log = FrameLog(run_dir, inputs.count, store.passes, done, plain(cfg.logger), resolved_dict(cfg))
    flows = VideoFlows(inputs.frame, build(cfg.flow), run_dir / "flow", device)

    def on_frame(record: FrameRecord) -> None:
        log(record)
        if on_step is not None:
            on_step(record.pass_index * inputs.count + record.step + 1, inputs.count * store.passes)

    if on_step is not None:
        on_step(done, inputs.count * store.passes)
    try:
        result = stylize_video(
            inputs, criterion, flows, store, settings=settings, video=video, style_images=style_images,
            style_blend=plain(cfg.style.blend), fps=reader.fps, on_frame=on_frame,
        )
    except KeyboardInterrupt:
        log.finish(None)
        finished = sum(store.finished(k) for k in range(store.passes))
        print(f"\ninterrupted: {finished} finished frames are kept in {run_dir}; resume with:\n"
              f"  {resume_command(run_dir)}", file=sys.stderr, flush=True)
        sys.exit(130)
    except BaseException:
        log.finish(None)
        raise
    finally:
        flows.close()
    log.bar.close()
    per_frame = result.seconds / result.computed if result.computed else math.nan
    if v.get("chunk") is not None:  # one chunk of a long video: its frames are the result
        log.finish({})
        print(f"chunk {v.chunk} done: {result.computed} frames optimised ({per_frame:.2f} s/frame)", flush=True)
        return store.folder(store.passes - 1)
    write_video(output, store, reader, v, overwrite=cfg.overwrite)
    if v.side_by_side:
        write_video(side_by_side_path(output), store, reader, v, inputs, overwrite=cfg.overwrite)
    summary = closing_metrics(cfg, inputs, store, output, result.records, device) if v.metrics else {}
    log.finish(summary, output)
    print(f"done: {result.computed} frames optimised in {result.seconds:.1f} s ({per_frame:.2f} s/frame), "
          f"method {video.method}, {store.passes} pass(es), {inputs.count} frames at {size[1]}x{size[0]}", flush=True)
    print(f"output: {output}", flush=True)
    return output


def write_video(
    output: Path, store: PassFolders, reader: VideoReader, v: DictConfig, inputs: InputFrames | None = None,
    overwrite: bool = False,
) -> None:
    """The final frames (or, with ``inputs``, input | stylized side by side) at the input's fps, with its audio."""
    height, width = store.load(store.passes - 1, 0).shape[-2:]
    width = 2 * width if inputs is not None else width
    with open_writer(output, reader.fps, width, height, audio_from=reader, audio=v.audio, crf=v.crf,
                     overwrite=overwrite) as writer:
        for t, frame in enumerate(store.output_frames()):
            writer.write(torch.cat([inputs.frame(t), frame], dim=-1) if inputs is not None else frame)


def closing_metrics(
    cfg: DictConfig, inputs: InputFrames, store: PassFolders, output: Path, records: list, device: torch.device,
    extra: Callable[[list[float]], dict[str, float]] | None = None,
) -> dict:
    """:func:`write_metrics`, or when it fails one warning line with the ``python -m nst.metrics`` command that
    computes the same numbers from the finished frames: the video is written, so the run still succeeds."""
    try:
        return write_metrics(cfg, inputs, store, output, records, device, extra)
    except Exception as exc:
        run_dir, (arch, weights) = Path(cfg.paths.output_dir), metric_encoder(cfg)
        warn_metrics_failed(exc, {"input": run_dir / "input", "output": store.folder(store.passes - 1),
                                  "style.image": style_paths(cfg.style)[0], "vgg.arch": arch, "vgg.weights": weights,
                                  "json": run_dir / "metrics.json"})
        return {}


def write_metrics(
    cfg: DictConfig, inputs: InputFrames, store: PassFolders, output: Path, records: list, device: torch.device,
    extra: Callable[[list[float]], dict[str, float]] | None = None,
) -> dict:
    """The metric table of :mod:`nst.evaluation.measure` for this run: printed, written to ``<run>/metrics.json``;
    returned as the ``metrics/*`` summary the loggers take.

    ``extra`` turns the output's per-frame E_warp (index j: frame j+1 against frame j) into more keys of the record
    (NaN as null) and more rows of the table (a chunked run's seams, :func:`nst.gatys.video_chunks.seam_summary`).
    """
    arch, weights = metric_encoder(cfg)
    criterion = metric_criterion(weights, device, arch)
    criterion.set_style(load_style_images(style_paths(cfg.style), max(inputs.size)), plain(cfg.style.blend))
    estimator = build_estimator(metrics_flow(cfg.get("metrics_flow", "auto"), cfg.flow.get("_target_")))
    metrics = evaluate_video(iter(inputs), store.output_frames(), criterion, estimator) if inputs.count > 1 else None
    timed = [r.seconds for r in records]
    added = extra(metrics.warp_error_output.per_frame) if extra and metrics else {}
    report = record(
        cfg.content, output, frames=inputs.count, size=inputs.size, flow=estimator.name,
        encoder=criterion.encoder.label, style_image=style_paths(cfg.style)[0], style_blend=plain(cfg.style.blend),
        metrics=metrics, method=cfg.video.method, seconds_per_frame=sum(timed) / len(timed) if timed else None,
        flow_wait_share=sum(r.flow_wait for r in records) / sum(timed) if timed else None,
        **{k: None if math.isnan(x) else x for k, x in added.items()},
    )
    write_json(report, Path(cfg.paths.output_dir) / "metrics.json")
    print_table(report, "metrics", [(k.replace("_", " "), k) for k in added])
    names = {"warp_error_input": "warp_error_input", "warp_error": "warp_error_output",
             "warp_error_ratio": "warp_error_ratio", "style_distance": "style_distance",
             "content_distance": "content_distance"}
    summary = {f"metrics/{name}": math.nan if report[key] is None else report[key] for name, key in names.items()}
    return {**summary, "metrics/encoder": criterion.encoder.label}
