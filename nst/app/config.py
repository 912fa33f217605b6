"""Where the Hydra configs live, the resolvers they use, and building objects from config nodes."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from nst.app.launch import resume_run_dir
from nst.errors import NSTError

#: The repository root (``conf/`` and ``assets/`` live here; installs are editable, see README).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"

# conf/hydra/launcher/submitit_{local,slurm}.yaml set our defaults on top of the launcher plugin's schema of the
# same name; Hydra 1.3 still merges the two (every plugin key stays overridable) but warns about it on each run.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/submitit_(local|slurm)' is validated against")


def register_resolvers() -> None:
    """``${project_root:}`` lets configs name bundled assets independently of the working directory;
    ``${resume_run_dir:ckpt,fresh}`` puts a resumed training run back into its own folder (train.yaml)."""
    OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
    OmegaConf.register_new_resolver("resume_run_dir", resume_run_dir, replace=True)


def build(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` whose failures are user errors: an :class:`NSTError` raised by the target
    comes out as itself, anything else the target refused (a bad value, an unknown key) as one
    :class:`NSTError` naming the target. Hydra would otherwise print a multi-line report."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, NSTError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from exc
        target = node.get("_target_", "config") if hasattr(node, "get") else "config"
        raise NSTError(f"cannot build {target} from the config: {str(exc).splitlines()[-1]}") from exc


def style_paths(style: DictConfig) -> list[Path]:
    """``style.image`` as a list of paths: one path, or a list of images to blend (``style.blend``)."""
    images = style.image
    paths = list(images) if isinstance(images, (ListConfig, list, tuple)) else [images]
    if not paths:
        raise NSTError("style.image is empty; give one style image path or a list of them")
    return [Path(str(p)).expanduser() for p in paths]


def named_styles(style: DictConfig) -> dict[str, Path]:
    """The styles of a multi-style network, ``{name: image}`` from ``style.paintings`` (``style=[a,b,...]``);
    empty when the config selects one style, whose images are :func:`style_paths`."""
    paintings = plain(style.get("paintings")) or {}
    if len(paintings) < 2:
        return {}
    if style.get("blend") is not None:
        raise NSTError("style.blend mixes the images of one style; a multi-style network blends at inference time")
    return {str(name): Path(str(path)).expanduser() for name, path in paintings.items()}


def style_choice(style: DictConfig | None) -> str | dict[str, float] | None:
    """What infer.py asks a multi-style network to paint: ``style.blend`` when it is a ``{name: weight}`` blend,
    else the selected style's name (``style=udnie``); ``None`` when nothing is selected."""
    if style is None:
        return None
    blend = plain(style.get("blend"))
    if isinstance(blend, dict):
        return {str(k): float(v) for k, v in blend.items()}
    names = list(plain(style.get("paintings")) or {})
    if len(names) > 1:
        raise NSTError(f"infer.py paints one style or a blend: use style=NAME or style.blend={{{names[0]}:0.5,...}}")
    return names[0] if names else None


def training_style_paths(style: DictConfig) -> list[Path]:
    """The style images a training run uses: one per named style of a multi-style network, else
    :func:`style_paths`."""
    return list(named_styles(style).values()) or style_paths(style)


register_resolvers()


def plain(node: Any) -> Any:
    """A config node as plain Python data (dicts, lists, scalars), resolved; anything else unchanged."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node
