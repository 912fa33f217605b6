"""Where the Hydra configs live, the resolvers they use, and saving a run's resolved config."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nst.files import atomic_path

#: The repository root (``conf/`` and ``assets/`` live here; installs are editable, see README).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT_ROOT / "conf"


def register_resolvers() -> None:
    """``${project_root:}`` lets configs name bundled assets independently of the working directory."""
    OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)


def save_resolved_config(cfg: DictConfig, path: str | os.PathLike) -> Path:
    """Write the config with every interpolation resolved, so a run can be repeated from its folder."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return path


register_resolvers()
