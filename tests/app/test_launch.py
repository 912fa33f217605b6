"""How training runs start (nst.app.launch): resuming in the checkpoint's own folder, DDP inside sweeps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nst.app.launch import check_ddp_launch, checkpoint_step, resume_run_dir
from nst.errors import NSTError
from tests.helpers import compose_config

DDP = {"strategy": "ddp", "accelerator": "gpu", "devices": 4, "num_nodes": 1}


def _checkpoint(run: Path, step: int = 7) -> Path:
    path = run / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"global_step": step, "state_dict": {}}, path)
    return path


def test_resume_runs_in_the_checkpoints_own_folder(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "run")
    assert resume_run_dir(str(ckpt), "fresh") == str(tmp_path / "run")
    assert resume_run_dir(None, "fresh") == "fresh"
    assert resume_run_dir(str(tmp_path / "run" / "checkpoints" / "typo.ckpt"), "fresh") == "fresh"  # no folder made
    torch.save({"global_step": 1}, tmp_path / "elsewhere.ckpt")
    assert resume_run_dir(str(tmp_path / "elsewhere.ckpt"), "fresh") == "fresh"  # not a run's checkpoint


def test_train_config_puts_hydra_run_dir_there(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "run")
    resumed = compose_config("train", [f"ckpt_path={ckpt}"], hydra=True)
    assert resumed.hydra.run.dir == str(tmp_path / "run")
    assert compose_config("train", [], hydra=True).hydra.run.dir.startswith("outputs/train/20")
    explicit = compose_config("train", [f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'new'}"], hydra=True)
    assert explicit.hydra.run.dir == str(tmp_path / "new")


def test_checkpoint_step_and_bad_checkpoints(tmp_path: Path) -> None:
    assert checkpoint_step(None) is None
    assert checkpoint_step(str(_checkpoint(tmp_path / "run", step=42))) == 42
    with pytest.raises(NSTError, match="no such checkpoint .*checkpoints/last.ckpt"):
        checkpoint_step(str(tmp_path / "missing.ckpt"))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(NSTError, match="ckpt_path: cannot read .*junk.ckpt: a text file"):
        checkpoint_step(str(tmp_path / "junk.ckpt"))


def test_local_ddp_inside_a_multirun_is_refused_with_the_alternatives() -> None:
    with pytest.raises(NSTError) as info:
        check_ddp_launch(DDP, multirun=True, env={})
    message = str(info.value)
    assert "re-launch the whole sweep" in message and "submitit_slurm" in message and "torchrun" in message
    assert "\n" not in message
    with pytest.raises(NSTError):
        check_ddp_launch({**DDP, "devices": "0,1", "accelerator": "cpu"}, multirun=True, env={})
    with pytest.raises(NSTError):
        check_ddp_launch({**DDP, "devices": 1, "num_nodes": 2}, multirun=True, env={})


@pytest.mark.parametrize(
    ("trainer", "multirun", "env"),
    [
        (DDP, False, {}),  # a single run: Lightning's launcher is fine
        ({**DDP, "devices": 1}, True, {}),  # one process
        ({**DDP, "devices": [0]}, True, {}),
        ({**DDP, "strategy": "ddp_spawn"}, True, {}),  # spawn does not re-run the command line
        (DDP, True, {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "4", "GROUP_RANK": "0"}),  # torchrun
        (DDP, True, {"SLURM_NTASKS": "4", "SLURM_JOB_NAME": "train"}),  # SLURM (submitit)
    ],
)
def test_working_launches_pass(trainer: dict, multirun: bool, env: dict) -> None:
    check_ddp_launch(trainer, multirun=multirun, env=env)
