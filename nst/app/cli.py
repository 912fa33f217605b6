"""Hydra entry-point wrapper: user errors become one ``error: ...`` line and exit status 1.

With ``HYDRA_FULL_ERROR=1`` the exception propagates with its full traceback. In a multirun, a job that
fails with a user error is reported and the remaining jobs still run; the command exits 1 at the end.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from nst.app.config import CONF_DIR
from nst.errors import NSTError

_failed_jobs: list[str] = []


def _run_folder_note(message: str) -> str:
    """`` (run folder: <dir>)`` when the failed run left files there (config, log), so the user finds them;
    nothing when the message names that folder already."""
    try:
        folder = Path(HydraConfig.get().runtime.output_dir)
    except (ValueError, AttributeError):  # no Hydra run (a test calling the task directly)
        return ""
    named = str(folder) in message
    return f" (run folder: {folder})" if not named and folder.is_dir() and any(folder.iterdir()) else ""


def hydra_entry(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], None]]:
    """Turn ``task(cfg)`` into a console entry point reading ``conf/<config_name>.yaml``."""

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], None]:
        @functools.wraps(task)
        def job(cfg: DictConfig) -> Any:
            try:
                return task(cfg)
            except NSTError as exc:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"error: {exc}{_run_folder_note(str(exc))}", file=sys.stderr, flush=True)
                if HydraConfig.get().mode == RunMode.RUN:
                    sys.exit(1)
                _failed_jobs.append(str(exc))
                return None

        hydra_main = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)(job)

        @functools.wraps(task)
        def entry() -> None:
            _failed_jobs.clear()
            hydra_main()
            if _failed_jobs:
                print(f"error: {len(_failed_jobs)} job(s) of the multirun failed", file=sys.stderr)
                sys.exit(1)

        return entry

    return decorate
