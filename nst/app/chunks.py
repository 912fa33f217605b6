"""optimize.py for a long video over many workers: ``video.chunks=N`` (docs/scaling.md).

    python optimize.py content=long.mp4 video.chunks=8 hydra/launcher=submitit_slurm
    python optimize.py content=long.mp4 video.chunks=4 hydra/launcher=submitit_local

The selected frames are split into N overlapping chunks (:func:`nst.gatys.video_chunks.plan_chunks`); each is a
normal video run of optimize.py over its frame range, in ``<run>/chunks/<k>/``, run as a job of the Hydra
launcher (:mod:`nst.app.chunk_jobs`). This process shows chunks and frames done, then stitches the chunks into
``<run>/frames/`` (a linear fade across each overlap), encodes the video once with the input's audio, and
measures it, seams included. Rerunning the command with ``hydra.run.dir=<run>`` runs only the chunks that are not
finished, each from its finished frames; ``<run>/chunks_job.json`` keeps a rerun from mixing other settings in.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from nst.app.chunk_jobs import chunk_executor, run_chunks
from nst.app.device import resolve_device
from nst.app.optimize_video import (
    check_outputs,
    check_video_settings,
    closing_metrics,
    job_settings,
    output_path,
    resume_command,
    side_by_side_path,
    write_video,
)
from nst.app.run_info import save_run_info
from nst.errors import NSTError
from nst.gatys.video import VideoSettings
from nst.gatys.video_chunks import Chunk, plan_chunks, seam_summary, stitch_frames
from nst.gatys.video_store import InputFrames, PassFolders, check_job, content_identity, working_size
from nst.io.video import open_video

CHUNKS_JOB = "chunks_job.json"


def chunk_config(cfg: DictConfig, chunk: Chunk) -> dict[str, Any]:
    """The resolved config of one chunk's job: the run's, over the chunk's frames, in the chunk's folder."""
    data = OmegaConf.to_container(cfg, resolve=True)
    video = data["video"]
    video.update(start=video["start"] + chunk.start * video["every"], max_frames=chunk.frames, chunk=chunk.index,
                 metrics=False, side_by_side=False)
    data["paths"]["output_dir"] = str(chunk.folder)
    data["output"] = str(chunk.folder / "stylized.png")  # a chunk writes frames only
    return data


def optimize_chunked(cfg: DictConfig) -> Path:
    """Stylize ``cfg.content`` in ``video.chunks`` chunks, stitch, encode; returns the output path."""
    run_dir, content, v = Path(cfg.paths.output_dir), Path(cfg.content), cfg.video
    check_video_settings(cfg)
    reader = open_video(content, v.start, v.max_frames, v.every, folder_fps=v.fps)
    if reader.frame_count is None:
        raise NSTError(f"{content}: the number of frames is unknown; re-encode it as mp4")
    output = output_path(cfg, content, run_dir)
    check_outputs(cfg, [output, side_by_side_path(output)] if v.side_by_side else [output], content, run_dir)
    frames = int(reader.frame_count)
    spans = plan_chunks(frames, int(v.chunks), int(v.overlap))
    passes = VideoSettings(v.method, v.first_frame_iterations, list(v.long_term), v.passes, v.blend, cfg.init,
                           cfg.seed).pass_count  # a bad method or pass count fails before any job starts
    job = {"spans": spans, **job_settings(cfg, frames, passes, content_identity(reader))}
    check_job(run_dir, job, kept=("frames", "input"), name=CHUNKS_JOB)  # each chunk's folder guards itself
    save_run_info(cfg, run_dir)
    chunks = [Chunk(k, a, b, run_dir / "chunks" / str(k)) for k, (a, b) in enumerate(spans)]
    todo = [c for c in chunks if not c.done(passes)]
    size = max(c.frames for c in chunks)
    print(f"{frames} frames in {len(chunks)} chunks of up to {size} ({v.overlap} shared with the next): "
          f"{len(chunks) - len(todo)} finished, {len(todo)} to run", flush=True)
    for c in todo:
        if c.progress(passes):
            print(f"chunk {c.index}: {c.progress(passes)} of {c.frames * passes} frames finished, resuming", flush=True)
    if todo:
        launcher = HydraConfig.get().launcher if HydraConfig.initialized() else None
        launcher = OmegaConf.to_container(launcher, resolve=True) if launcher is not None else None
        executor = chunk_executor(launcher, run_dir / "chunks" / "logs", int(v.retries))
        on_slurm = executor is not None and executor.cluster == "slurm"
        poll = 10.0 if on_slurm else 0.5
        try:
            failed = run_chunks(todo, [chunk_config(cfg, c) for c in todo], executor, int(v.retries),
                                functools.partial(_show_progress, chunks, passes, [None]), poll)
        except KeyboardInterrupt:
            queued = " (jobs already submitted to SLURM keep running: scancel them first)" if on_slurm else ""
            print(f"\ninterrupted: finished frames are kept in {run_dir}{queued}; resume with:\n"
                  f"  {resume_command(run_dir)}", file=sys.stderr, flush=True)
            sys.exit(130)
        if failed:
            listed = "; ".join(f"chunk {k} (frames {spans[k][0]}-{spans[k][1] - 1}): {m}" for k, m in failed.items())
            raise NSTError(f"{len(failed)} of {len(chunks)} chunks failed: {listed}. The finished chunks are kept; "
                           f"run the others with: {resume_command(run_dir)}")
    if stitch_frames(chunks, run_dir / "frames", reader.fps, cfg.overwrite):
        print(f"stitched {frames} frames into {run_dir / 'frames'}", flush=True)
    store = PassFolders(run_dir, frames, 1, cfg.overwrite)
    write_video(output, store, reader, v, overwrite=cfg.overwrite)
    height, width = working_size(reader.width, reader.height, cfg.max_size)
    inputs = InputFrames(reader, run_dir / "input", (height, width), cfg.overwrite)  # read only if asked for
    if v.side_by_side:
        write_video(side_by_side_path(output), store, reader, v, inputs, overwrite=cfg.overwrite)
    if v.metrics:
        closing_metrics(cfg, inputs, store, output, [], resolve_device(cfg.device),
                        extra=functools.partial(seam_summary, spans=spans))
    print(f"done: {frames} frames in {len(chunks)} chunks ({len(todo)} run now), method {v.method}, "
          f"{passes} pass(es), at {width}x{height}", flush=True)
    print(f"output: {output}", flush=True)
    return output


def _show_progress(chunks: list[Chunk], passes: int, last: list) -> None:
    """``chunks 3/8 done, frames 412/960`` whenever it changes."""
    steps = [c.progress(passes) for c in chunks]
    done = sum(s == c.frames * passes for s, c in zip(steps, chunks))
    line = f"chunks {done}/{len(chunks)} done, frames {sum(steps)}/{sum(c.frames for c in chunks) * passes}"
    if line != last[0]:
        last[0] = line
        print(line, file=sys.stderr, flush=True)
