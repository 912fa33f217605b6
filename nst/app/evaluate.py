"""evaluate.py: every method on one clip, scored the same way, in one report.

The input frames are stored once at the working size (``<run>/input``). Each optimizer method runs exactly as
``python optimize.py content=<clip> video.method=<method>`` would, in ``<run>/<method>``; each fast network is
trained on photos (or loaded) and stylizes the stored frames (:mod:`nst.app.evaluate_fast`). Every method's
lossless frames are then measured by :func:`nst.evaluation.measure.measure`, behind ``python -m nst.metrics``, so
the table's numbers are what that command gives for the same output. E_warp uses a flow estimator that the
optimizer's methods did not use (``metrics_flow``, see :mod:`nst.flow.named`), so no method is scored by the
criterion it minimised; when that flow is not DIS, DIS's E_warp is a second, cheap column. A method that fails is
a row with its one-line reason (the traceback goes to ``<run>/<method>/error.txt``); the report is written anyway.
"""

from __future__ import annotations

import csv
import time
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nst.app.closing_metrics import metric_encoder
from nst.app.config import plain, style_paths
from nst.app.device import check_precision, resolve_device
from nst.app.evaluate_fast import fast_network, stylize_frames, training_data
from nst.app.optimize_video import optimize_video, output_path
from nst.app.run_info import resolved_dict, save_run_info
from nst.errors import NSTError
from nst.evaluation import plots
from nst.evaluation.grid import write_frames_video, write_grid
from nst.evaluation.measure import measure
from nst.evaluation.report import MethodRow, which_method, write_report
from nst.flow.named import family, metrics_flow
from nst.flow.opencv import DISFlow
from nst.gatys.temporal import METHODS
from nst.gatys.video_log import FRAMES_CSV
from nst.gatys.video_store import InputFrames, check_job, content_identity, working_size
from nst.io.media import VideoReader
from nst.io.video import open_video
from nst.metrics import warping_error
from nst.tracking import start_wandb

OPTIMIZER_METHODS = METHODS  # optimize.py's video.method, as the video loop defines them
FAST_METHODS = ("shipped", "fast", "fast_noise", "fast_temporal")
#: What decided the stored ``input/`` frames; a rerun in the same folder must have the same.
INPUT_JOB = "input_job.json"


def check_methods(methods: object) -> list[str]:
    """``methods`` as a list of known, distinct names; anything else is one line listing the valid ones."""
    names = [str(m) for m in (methods if isinstance(methods, list) else [methods])]
    unknown = [n for n in names if n not in OPTIMIZER_METHODS + FAST_METHODS]
    if unknown or not names or len(set(names)) != len(names):
        why = f"unknown {', '.join(unknown)}" if unknown else "an empty or repeated list"
        raise NSTError(f"methods: {why}; choose from {', '.join(OPTIMIZER_METHODS + FAST_METHODS)}")
    return names


def _listed(values: list) -> str:
    return "[" + ",".join(str(v) for v in values) + "]"


class Evaluation:
    """The state of one evaluation: the config, the run folder, the stored input frames and the rows so far."""

    def __init__(self, cfg: DictConfig):
        self.cfg, self.methods = cfg, check_methods(plain(cfg.methods))
        self.run_dir = Path(cfg.paths.output_dir)
        self.device = resolve_device(cfg.device)
        check_precision(self.device, cfg.precision)
        v = cfg.video
        with self.source() as reader:
            self.fps = reader.fps
            self.size = working_size(reader.width, reader.height, cfg.max_size)
            job = {"content": str(Path(cfg.content).resolve()), **content_identity(reader), "max_size": cfg.max_size,
                   **{k: plain(v.get(k)) for k in ("start", "max_frames", "every", "fps")}}
            check_job(self.run_dir, job, kept=("input",), name=INPUT_JOB)
            self.inputs = InputFrames(reader, self.run_dir / "input", self.size, cfg.overwrite)
            self.count = self.inputs.count
            if self.count < 2:
                raise NSTError(f"{cfg.content}: {self.count} frame(s) selected (video.start={v.start}, video.every="
                               f"{v.every}); the report needs at least 2 frames")
            self.inputs.frame(self.count - 1)  # stores every selected frame
        self.styles, self.blend = [str(p) for p in style_paths(cfg.style)], plain(cfg.style.get("blend"))
        self.encoder = metric_encoder(cfg)  # (arch, weights) of the style and content distances
        self.flow = metrics_flow(cfg.metrics_flow, cfg.flow.get("_target_"))
        self.optimizes = any(m in OPTIMIZER_METHODS for m in self.methods)
        trains = any(m in FAST_METHODS and not cfg[m].get("weights") for m in self.methods)
        self.training_data = training_data(cfg, self.run_dir / "input") if trains else None
        self.rows: list[MethodRow] = []

    def source(self) -> VideoReader:
        """The clip, with the evaluation's frame selection (and its audio), opened anew for each use."""
        v = self.cfg.video
        return open_video(self.cfg.content, v.start, v.max_frames, v.every, folder_fps=v.fps)

    def score(self, row: MethodRow, json_path: Path) -> MethodRow:
        """``python -m nst.metrics`` on the row's frames against the stored input frames, with the metrics flow and
        every style image of a blend; then, when that flow is not DIS, E_warp under DIS too (no VGG: cheap)."""
        style = {"style.image": self.styles[0]}
        if len(self.styles) > 1:  # as Hydra writes lists, which nst.metrics reads
            style = {"style.image": _listed(self.styles)}
            style |= {"style.blend": _listed(self.blend)} if self.blend is not None else {}
        metrics, _ = measure({
            "input": str(self.run_dir / "input"), "output": str(row.frames), "flow": self.flow, **style,
            "vgg.arch": self.encoder[0], "vgg.weights": self.encoder[1], "json": str(json_path),
        })
        row.warp_error = metrics.warp_error_output.mean
        row.warp_error_per_frame = metrics.warp_error_output.per_frame
        row.style_distance = metrics.style_distance.mean
        row.content_distance = metrics.content_distance.mean
        if self.flow != "dis":
            with open_video(self.run_dir / "input") as inputs, open_video(row.frames) as outputs:
                row.warp_error_dis = warping_error(inputs, outputs, DISFlow()).mean
        return row

    def optimizer(self, name: str, folder: Path, row: MethodRow) -> None:
        """optimize.py's video path with ``video.method=name`` in ``folder`` (which it resumes on a rerun)."""
        cfg = OmegaConf.create(OmegaConf.to_container(self.cfg, resolve=False))
        cfg.paths.output_dir, cfg.video.method, cfg.logger = str(folder), name, {"csv": {"name": "csv"}}
        cfg.output = str(output_path(cfg, Path(cfg.content), folder))
        row.video = str(optimize_video(cfg))
        row.frames = str(folder / "frames")
        with open(folder / FRAMES_CSV, newline="") as f:
            seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
        row.seconds_per_frame = sum(seconds) / self.count if seconds else None
        row.settings = {"iterations": self.cfg.iterations, "flow": self.cfg.flow.get("_target_", "").split(".")[-1]}
        if name == "consistent":
            row.settings |= {"long_term": plain(self.cfg.video.long_term), "passes": self.cfg.video.passes}
        if name in ("temporal_loss", "temporal", "consistent"):
            row.settings["temporal_weight"] = self.cfg.loss.temporal_weight

    def fast(self, name: str, folder: Path, row: MethodRow) -> None:
        """A fast network, shipped or trained on ``fast_training.data`` (photos, never this clip), stylizing the
        clip."""
        net = fast_network(self.cfg, name, folder, self.training_data, row, self.device)
        row.frames = str(folder / "frames")
        row.seconds_per_frame = stylize_frames(net, self.run_dir / "input", folder / "frames", self.device,
                                               self.cfg.fast_training.batch, self.cfg.overwrite)
        with self.source() as reader:
            v = self.cfg.video
            row.video = str(write_frames_video(row.frames, folder / "stylized.mp4", reader, v.audio, v.crf))

    def run_method(self, name: str) -> MethodRow:
        kind = "fast" if name in FAST_METHODS else "optimizer"
        row, folder = MethodRow(name, kind), self.run_dir / name
        start = time.perf_counter()
        print(f"== {name} ({kind})", flush=True)
        try:
            (self.fast if kind == "fast" else self.optimizer)(name, folder, row)
            self.score(row, folder / "metrics.json")
        except Exception as exc:  # any failure is a row of the report, not the end of the evaluation
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "error.txt").write_text(traceback.format_exc())
            print(f"error: {name} failed: {reason} (traceback in {folder / 'error.txt'})", flush=True)
            return row.fail(reason if isinstance(exc, NSTError) else f"{type(exc).__name__}: {reason}")
        print(f"{name}: E_warp ({self.flow} flow) {row.warp_error:.4g}, style distance {row.style_distance:.4g} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        return row

    def report(self) -> Path:
        """Plots, grid video, ``report.md`` and ``report.json``; W&B too with ``logger=wandb``."""
        rows, run = self.rows, self.run_dir
        pictures = {"warp_error_per_frame": plots.warp_error_per_frame(rows, run / "warp_error_per_frame.png"),
                    "style_vs_warp": plots.style_vs_warp(rows, run / "style_vs_warp.png"),
                    "frame_strip": plots.frame_strip(rows, run / "frame_strip.png", self.count)}
        shown = [r for r in rows if r.status == "ok" and r.frames]
        with self.source() as reader:
            grid = write_grid([r.frames for r in shown], [r.name for r in shown], run / "grid.mp4", reader,
                              self.cfg.video.audio, self.cfg.video.crf)
        info = {"content": str(self.cfg.content), "style": self.styles[0] if len(self.styles) == 1 else self.styles,
                "style_blend": self.blend, "frames": self.count, "width": self.size[1], "height": self.size[0],
                "encoder": ":".join(self.encoder), "metrics_flow": self.flow,
                "optimizer_flow": family(self.cfg.flow.get("_target_")) if self.optimizes else None,
                "device": self.device.type, "grid": str(grid)}
        markdown, _ = write_report(run, rows, info)
        if "wandb" in (plain(self.cfg.logger) or {}):
            from nst.evaluation.wandb_report import log_report

            wandb_run = start_wandb(self.cfg.logger.wandb, run, resolved_dict(self.cfg), job_type="evaluate")
            log_report(wandb_run, rows, pictures, grid)
        return markdown


def evaluate(cfg: DictConfig) -> Path:
    """Run every method of ``cfg.methods`` on ``cfg.content``, write the report; returns ``report.md``'s path."""
    evaluation = Evaluation(cfg)
    save_run_info(cfg, evaluation.run_dir)
    reference = MethodRow("input", "input", frames=str(evaluation.run_dir / "input"))
    evaluation.rows.append(evaluation.score(reference, evaluation.run_dir / "input_metrics.json"))
    for name in evaluation.methods:
        evaluation.rows.append(evaluation.run_method(name))
    markdown = evaluation.report()
    print(which_method(evaluation.rows).replace("**", ""), flush=True)
    print(f"report: {markdown}", flush=True)
    return markdown
