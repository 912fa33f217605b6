"""The submitit launchers (conf/hydra/launcher/) without a cluster: every command composes with them, SLURM's
submission scripts are written by a fake ``sbatch``, DDP maps onto SLURM tasks, and chunk jobs are retried."""

from __future__ import annotations

import contextlib
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from submitit.core.utils import FailedJobError

from nst.app import chunk_jobs
from nst.app.chunk_jobs import chunk_executor, run_chunks
from nst.errors import NSTError
from nst.gatys.video_chunks import Chunk
from tests.helpers import compose_config

SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``srun`` and ``sbatch`` on PATH; sbatch appends each script it gets to the returned file."""
    bin_dir, scripts = tmp_path / "bin", tmp_path / "sbatch_scripts.txt"
    bin_dir.mkdir()
    for name, body in (("srun", "exit 0"), ("sbatch", f'cat "$1" >> {scripts}\necho "Submitted batch job 4242"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    return scripts


@pytest.mark.parametrize("launcher", ["submitit_local", "submitit_slurm"])
@pytest.mark.parametrize("command", ["optimize", "train", "infer", "evaluate"])
def test_every_command_composes_with_each_launcher(command: str, launcher: str, tmp_path: Path) -> None:
    cfg = compose_config(command, [f"hydra/launcher={launcher}", f"hydra.sweep.dir={tmp_path}"], hydra=True)
    built = instantiate(cfg.hydra.launcher)
    assert type(built).__name__ == ("SlurmLauncher" if launcher == "submitit_slurm" else "LocalLauncher")
    params = built.params
    assert params["submitit_folder"] == f"{tmp_path}/.submitit/%j"
    assert (params["tasks_per_node"], params["nodes"], params["gpus_per_node"]) == (1, 1, 1)  # one process, one GPU


def test_multi_node_ddp_is_one_slurm_task_per_gpu_and_lightning_reads_its_ranks(monkeypatch, tmp_path) -> None:
    overrides = ["hydra/launcher=submitit_slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                 f"hydra.sweep.dir={tmp_path}", "trainer.accelerator=cpu", f"paths.output_dir={tmp_path}"]
    cfg = compose_config("train", overrides, hydra=True)
    params = instantiate(cfg.hydra.launcher).params
    assert (params["tasks_per_node"], params["nodes"], params["gpus_per_node"]) == (4, 2, 4)
    # What srun gives the 6th of the 8 processes (node 1, local rank 1); Lightning picks SLURM's environment.
    for key, value in {"SLURM_NTASKS": "8", "SLURM_NTASKS_PER_NODE": "4", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
                       "SLURM_NODEID": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "77",
                       "SLURM_NODELIST": "gpu[01-02]"}.items():
        monkeypatch.setenv(key, value)
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert (trainer_cfg["strategy"], trainer_cfg["devices"], trainer_cfg["num_nodes"]) == ("ddp", 4, 2)
    from lightning.pytorch.utilities import rank_zero_only

    # The Trainer sets Lightning's process-wide rank to 5; later tests in this process run as rank 0.
    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)
    trainer = instantiate({**trainer_cfg, "precision": "32-true", "logger": False})
    from lightning.fabric.plugins.environments import SLURMEnvironment

    assert isinstance(trainer.strategy.cluster_environment, SLURMEnvironment)
    assert (trainer.world_size, trainer.global_rank, trainer.node_rank, trainer.local_rank) == (8, 5, 1, 1)


def test_a_ddp_sweep_submits_one_array_of_multi_node_jobs(fake_slurm: Path, monkeypatch, tmp_path: Path) -> None:
    import submitit

    overrides = ["hydra/launcher=submitit_slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                 "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    cfg = compose_config("train", overrides, hydra=True)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=print, config=cfg)
    monkeypatch.setattr(submitit.core.core.Job, "results", lambda self: [None])  # no cluster to wait for
    launcher.launch([["style=udnie"], ["style=starry_night"]], initial_job_idx=0)
    script = fake_slurm.read_text()
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--time=720",
                 "--cpus-per-task=8", "--mem=32GB", "--array=0-1%2", "--signal=USR2@120"):
        assert f"#SBATCH {line}\n" in script, line
    assert script.count("#!/bin/bash") == 1  # one array, not two jobs


def test_chunk_jobs_are_one_process_on_one_gpu_in_one_array(fake_slurm: Path, tmp_path: Path) -> None:
    cfg = compose_config("optimize", ["hydra/launcher=submitit_slurm", "hydra.launcher.max_num_timeout=0",
                                      f"hydra.sweep.dir={tmp_path}", "hydra.launcher.mem_gb=16",
                                      "hydra.launcher.array_parallelism=2"], hydra=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    executor = chunk_executor({**launcher, "tasks_per_node": 4, "gpus_per_node": 4}, tmp_path / "logs", retries=2)
    assert executor._executor.max_num_timeout == 2  # pre-empted chunks are requeued, as retries allow
    with executor.batch():
        jobs = [executor.submit(print, k) for k in range(3)]
    assert [job.job_id for job in jobs] == ["4242_0", "4242_1", "4242_2"]
    script = fake_slurm.read_text()
    for line in ("--ntasks-per-node=1", "--gpus-per-node=1", "--nodes=1", "--mem=16GB", "--array=0-2%2"):
        assert f"#SBATCH {line}\n" in script, line
    assert f"--output={tmp_path}/logs/%A_%a/%A_%a_0_log.out" in script


def test_slurm_without_srun_is_one_line_and_other_launchers_run_here(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    with pytest.raises(NSTError, match="submitit_slurm: .*srun.* use hydra/launcher=submitit_local") as info:
        chunk_executor({"_target_": SLURM, "submitit_folder": "x"}, tmp_path, retries=1)
    assert "\n" not in str(info.value)
    basic = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
    assert chunk_executor(basic, tmp_path, 1) is None
    assert chunk_executor(None, tmp_path, 1) is None


class _Handle:
    """A finished job of :class:`_Executor`: ``result()`` runs the function, as a job's process would have."""

    def __init__(self, fn, k: int):
        self.fn, self.job_id, self.paths = fn, str(k), SimpleNamespace(stderr=Path(f"{k}_log.err"))

    def done(self) -> bool:
        return True

    def result(self):
        try:
            return self.fn()
        except Exception as exc:  # how submitit reports a crashed job
            raise FailedJobError(f"Job failed with trace:\n{'-' * 22}\nTraceback ...\n"
                                 f"{type(exc).__name__}: {exc}\n{'-' * 22}\nYou can check full logs") from None


class _Executor:
    """submitit's executor interface, as run_chunks uses it, without processes."""

    cluster, folder = "fake", Path("logs/%j")

    def __init__(self):
        self.submitted = 0

    def batch(self):
        return contextlib.nullcontext()

    def submit(self, fn) -> _Handle:
        self.submitted += 1
        return _Handle(fn, self.submitted)


@pytest.mark.parametrize("here", [True, False])
def test_a_crashed_chunk_is_retried_and_a_user_error_is_not(monkeypatch, tmp_path: Path, capsys, here) -> None:
    calls: list[int] = []

    def fake_run(self) -> str | None:
        calls.append(self.config["k"])
        if self.config["k"] == 0 and calls.count(0) == 1:
            raise RuntimeError("CUDA error: an illegal memory access")  # once: the retry succeeds
        return "video.method must be one of ..." if self.config["k"] == 1 else None

    monkeypatch.setattr(chunk_jobs.ChunkJob, "__call__", fake_run)
    chunks = [Chunk(k, 0, 1, tmp_path / str(k)) for k in range(3)]
    executor = None if here else _Executor()
    failed = run_chunks(chunks, [{"k": k} for k in range(3)], executor, retries=1, progress=lambda: None, poll=0)
    assert failed == {1: "video.method must be one of ..."}
    assert sorted(calls) == [0, 0, 1, 2]  # chunk 0 twice, the user error once
    assert "chunk 0 failed (" in capsys.readouterr().err
    calls.clear()
    failed = run_chunks(chunks[:1], [{"k": 0}], executor, retries=0, progress=lambda: None, poll=0)
    assert "RuntimeError: CUDA error: an illegal memory access" in failed[0]
