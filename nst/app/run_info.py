"""What reproduces a run, written next to it by both loops: the resolved config and the git commit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nst.app.config import PROJECT_ROOT
from nst.io.files import atomic_path


def resolved_yaml(cfg: DictConfig) -> str:
    """The config as YAML with every interpolation resolved, so a run can be repeated from its folder."""
    return OmegaConf.to_yaml(cfg, resolve=True)


def resolved_dict(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain data with every interpolation resolved (for loggers' hyperparameters)."""
    return OmegaConf.to_container(cfg, resolve=True)


def git_commit(repo: str | os.PathLike = PROJECT_ROOT) -> str:
    """The HEAD commit of ``repo`` (with ``-dirty`` if tracked files changed), or ``unknown`` outside git."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return "unknown"
    return f"{commit}-dirty" if git("status", "--porcelain", "--untracked-files=no") else commit


def save_run_info(cfg: DictConfig, run_dir: str | os.PathLike) -> Path:
    """Write ``config.yaml`` (resolved) and ``git_commit.txt`` into ``run_dir``, atomically; returns the config path."""
    run_dir = Path(run_dir)
    for name, text in (("config.yaml", resolved_yaml(cfg)), ("git_commit.txt", git_commit() + "\n")):
        with atomic_path(run_dir / name) as tmp:
            tmp.write_text(text)
    return run_dir / "config.yaml"
