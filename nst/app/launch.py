"""How the processes of a training run start, where Hydra and Lightning meet: resuming in a checkpoint's own
run folder, and local DDP, which cannot run inside a Hydra sweep."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from nst.encoders.state_dict import read_torch_file
from nst.errors import NSTError


def resume_run_dir(ckpt_path: str | None, fresh: str) -> str:
    """``hydra.run.dir`` of train.py: the run folder of an existing ``<run>/checkpoints/*.ckpt`` given as
    ``ckpt_path``, so a resumed run keeps its best.ckpt, metrics.csv and W&B run; ``fresh`` otherwise."""
    path = Path(str(ckpt_path)).expanduser() if ckpt_path else None
    if path is not None and path.is_file() and path.parent.name == "checkpoints":
        return str(path.resolve().parent.parent)
    return fresh


def checkpoint_step(ckpt_path: str | None) -> int | None:
    """The global step a run resumes from (``None`` without ``ckpt_path``); a missing or unreadable
    checkpoint is one :class:`NSTError` line."""
    if not ckpt_path:
        return None
    hint = "use e.g. ckpt_path=<run dir>/checkpoints/last.ckpt"
    if not Path(ckpt_path).is_file():
        raise NSTError(f"ckpt_path: no such checkpoint {ckpt_path}; {hint}")
    data = read_torch_file(ckpt_path, "ckpt_path", hint)
    if not isinstance(data, dict) or not isinstance(data.get("global_step"), int):
        raise NSTError(f"ckpt_path: {ckpt_path} is not a train.py checkpoint (no global_step); {hint}")
    return int(data["global_step"])


def in_multirun() -> bool:
    """Whether this job is one of a Hydra multirun (``-m``, ``hparams_search=...``)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def check_ddp_launch(trainer: Mapping, multirun: bool, env: Mapping[str, str] = os.environ) -> None:
    """Refuse local multi-process DDP inside a Hydra multirun.

    Lightning starts the extra DDP ranks by running the same command line again, so inside a sweep every
    rank would re-launch the whole sweep. Ranks started from outside (SLURM through the submitit launcher,
    ``torchrun``) and single-process strategies are fine.
    """
    if not multirun or _processes(trainer) <= 1 or _launched_externally(env):
        return
    raise NSTError(
        "local DDP (several trainer.devices) cannot run inside a Hydra multirun: every process would re-launch "
        "the whole sweep; sweep on SLURM with hydra/launcher=submitit_slurm (see conf/trainer/ddp.yaml), or train "
        "one run at a time with torchrun --nproc_per_node=N train.py trainer=ddp trainer.devices=N"
    )


def _processes(trainer: Mapping) -> int:
    """How many processes Lightning's own launcher would start (1 for spawn/fork strategies: they do not re-run
    the command line)."""
    strategy = str(trainer.get("strategy") or "auto")
    if any(word in strategy for word in ("spawn", "fork", "notebook")):
        return 1
    devices = trainer.get("devices", 1)
    accelerator = str(trainer.get("accelerator") or "auto")
    if devices in (-1, "-1", "auto"):
        count = torch.cuda.device_count() if accelerator in ("gpu", "cuda", "auto") else 1
    elif isinstance(devices, str):
        count = len([d for d in devices.split(",") if d.strip()]) if "," in devices else int(devices)
    elif isinstance(devices, int):
        count = devices
    else:
        count = len(list(devices))
    return count * int(trainer.get("num_nodes") or 1)


def _launched_externally(env: Mapping[str, str]) -> bool:
    """Ranks started by torchrun (TorchElastic variables) or by SLURM (a batch job with tasks)."""
    torchrun = all(key in env for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "GROUP_RANK"))
    slurm = "SLURM_NTASKS" in env and env.get("SLURM_JOB_NAME") not in ("bash", "interactive")
    return torchrun or slurm
