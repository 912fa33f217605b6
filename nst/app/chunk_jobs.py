"""Running the chunks of a long video: as submitit jobs built from the Hydra launcher config, or here.

``hydra/launcher=submitit_slurm`` submits the chunks as one SLURM job array, ``submitit_local`` as local
processes running at once; any other launcher (Hydra's ``basic``, the default) runs them one after another in
this process. A chunk job is :func:`nst.app.optimize_video.optimize_video` on the chunk's frame range, in the
chunk's run folder, so a chunk run again (a crash retried, a pre-empted job requeued, the whole command rerun)
resumes at its finished frames. A user error in a chunk (one ``error:`` line) is reported, not retried.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import submitit
import torch
from omegaconf import OmegaConf

from nst.errors import NSTError
from nst.gatys.video_chunks import Chunk

_CLUSTERS = {"SlurmLauncher": "slurm", "LocalLauncher": "local"}
#: submitit's parameters common to every executor, named without the cluster's prefix.
_BASE_KEYS = {"timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes", "name",
              "stderr_to_stdout"}


class ChunkJob(submitit.helpers.Checkpointable):
    """One chunk: a resolved optimize.py config (plain data) run by ``optimize_video``; returns None when done,
    or the one-line message of a user error. Checkpointable: a pre-empted or timed-out SLURM job is requeued
    (``max_num_timeout``) and resumes at its finished frames."""

    def __init__(self, config: Mapping[str, Any], threads: int | None = None):
        self.config, self.threads = dict(config), threads

    def __call__(self) -> str | None:
        from nst.app.optimize_video import optimize_video

        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            optimize_video(OmegaConf.create(self.config))
        except NSTError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return str(exc)
        return None


def chunk_executor(launcher: Mapping[str, Any] | None, folder: Path, retries: int) -> submitit.Executor | None:
    """A submitit executor with the submission parameters of ``hydra.launcher`` (as hydra-submitit-launcher
    builds its own), for jobs of one process on one GPU; None for a launcher that is not submitit's."""
    target = str((launcher or {}).get("_target_", ""))
    cluster = next((c for name, c in _CLUSTERS.items() if target.endswith(name)), None)
    if cluster is None:
        return None
    params = {k: v for k, v in launcher.items() if k not in ("_target_", "submitit_folder", "max_num_timeout")}
    init: dict[str, Any] = {"folder": str(folder / "%j")}
    if cluster == "slurm":  # requeues after pre-emption or timeout: at least the retries of a failed chunk
        init["slurm_max_num_timeout"] = max(int(launcher.get("max_num_timeout") or 0), retries)
    try:
        executor = submitit.AutoExecutor(cluster=cluster, **init)
    except RuntimeError as exc:  # no srun on this machine
        raise NSTError(f"hydra/launcher=submitit_{cluster}: {exc}; run on a SLURM login node, or use "
                       "hydra/launcher=submitit_local") from exc
    params.update(tasks_per_node=1, nodes=1, gpus_per_node=min(int(params.get("gpus_per_node") or 0), 1))
    executor.update_parameters(**{k if k in _BASE_KEYS else f"{cluster}_{k}": v for k, v in params.items()})
    return executor


def local_threads(jobs: int) -> int:
    """CPU threads for each of ``jobs`` local processes running at once, so they do not oversubscribe the CPUs."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // max(1, jobs))


def run_chunks(
    chunks: Sequence[Chunk], configs: Sequence[Mapping[str, Any]], executor: submitit.Executor | None,
    retries: int, progress: Callable[[], None], poll: float = 0.5,
) -> dict[int, str]:
    """Run ``chunks`` (their ``configs``) and wait for them, calling ``progress`` as frames get done; returns the
    failed chunks' messages, by chunk index. A chunk that crashes is run again up to ``retries`` times."""
    if executor is None:
        return _run_here(chunks, configs, retries, progress)
    threads = local_threads(len(chunks)) if executor.cluster == "local" else None
    jobs = [ChunkJob(config, threads) for config in configs]
    with executor.batch():  # SLURM: one job array (array_parallelism at once)
        submitted = [executor.submit(job) for job in jobs]
    running = {c.index: (c, job, handle, 0) for c, job, handle in zip(chunks, jobs, submitted)}
    ids = ", ".join(f"{c.index}: {handle.job_id}" for c, _, handle, _ in running.values())
    print(f"submitted {len(running)} chunk job(s) to {executor.cluster} (chunk: job id {ids}); logs in "
          f"{Path(str(executor.folder)).parent}", flush=True)
    failed: dict[int, str] = {}
    while running:
        time.sleep(poll)
        progress()
        for index, (chunk, job, handle, attempt) in list(running.items()):
            if not handle.done():
                continue
            del running[index]
            try:
                message = handle.result()
            except Exception as exc:  # the job crashed, was killed, or timed out for good
                if attempt < retries:
                    print(f"chunk {index} failed ({_reason(exc)}); running it again, from its finished frames "
                          f"(retry {attempt + 1} of {retries})", file=sys.stderr, flush=True)
                    running[index] = (chunk, job, executor.submit(job), attempt + 1)
                    continue
                message = f"{_reason(exc)} (log: {handle.paths.stderr})"
            if message:
                failed[index] = message
    progress()
    return failed


def _run_here(chunks: Sequence[Chunk], configs: Sequence[Mapping[str, Any]], retries: int,
              progress: Callable[[], None]) -> dict[int, str]:
    """The chunks one after another in this process (no submitit launcher)."""
    failed: dict[int, str] = {}
    for chunk, config in zip(chunks, configs):
        for attempt in range(retries + 1):
            try:
                message = ChunkJob(config)()
                break
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                if attempt < retries:
                    print(f"chunk {chunk.index} failed ({message}); running it again (retry {attempt + 1} of "
                          f"{retries})", file=sys.stderr, flush=True)
        if message:
            failed[chunk.index] = message
        progress()
    return failed


def _reason(exc: Exception) -> str:
    """The last line of the job's traceback (submitit's FailedJobError quotes it between dashed lines)."""
    parts = str(exc).split("-" * 22)
    lines = [line.strip() for line in (parts[1] if len(parts) >= 3 else str(exc)).splitlines() if line.strip()]
    return (lines[-1] if len(parts) >= 3 else lines[0]) if lines else type(exc).__name__
