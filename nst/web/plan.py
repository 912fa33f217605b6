"""From what the page asks (a form) to the config of the same run on the command line: infer.py's config for
the fast method, optimize.py's for the optimization, composed from conf/ by Hydra and saved in the job folder.

Only the server's own names reach a path: the job folder, ``input.<real type>``, ``style.<real type>``,
``result.<suffix>``, and the bundled styles looked up by a name from their own list.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from nst.app.config import CONF_DIR
from nst.web.media import BadUpload, MediaInfo
from nst.web.settings import Network, WebSettings

METHODS = ("fast", "optimize")
_compose_lock = threading.Lock()


@dataclass(frozen=True)
class JobRequest:
    """A job as the page asks for it, checked."""

    method: str
    network: str | None
    style: str | None  # a bundled style (optimize) or a style of the network (fast); None: the uploaded painting
    style2: str | None  # blended in with weight ``blend``
    blend: float
    preserve_color: bool
    max_size: int
    side_by_side: bool
    metrics: bool
    iterations: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bundled_styles(styles_dir: Path) -> dict[str, Path]:
    """The bundled paintings by name (``assets/styles/<name>.jpg``)."""
    return {p.stem: p for p in sorted(styles_dir.glob("*.jpg"))}


def _flag(form: Mapping[str, str], key: str) -> bool:
    return str(form.get(key, "")).lower() in ("1", "true", "on", "yes")


def _number(form: Mapping[str, str], key: str, default: float, low: float, high: float, kind: type = int) -> Any:
    text = str(form.get(key) or "").strip()
    if not text:
        return kind(default)
    try:
        value = kind(float(text)) if kind is int else kind(text)
    except ValueError:
        raise BadUpload(f"{key}={text!r} is not a number") from None
    if not low <= value <= high:
        raise BadUpload(f"{key}={text} is out of range: use {low:g} to {high:g}")
    return value


def parse_request(form: Mapping[str, str], settings: WebSettings, networks: Mapping[str, Network],
                  styles: Mapping[str, Path], painting: bool, info: MediaInfo) -> JobRequest:
    """Check the form's fields (``painting``: a painting was uploaded); a bad one is a one-line 4xx."""
    method = str(form.get("method") or ("fast" if networks else "optimize"))
    if method not in METHODS:
        raise BadUpload(f"unknown method {method!r}: use fast or optimize")
    network, known = None, dict(styles)
    if method == "fast":
        if not networks:
            raise BadUpload("this server has no fast network (weights= in conf/web.yaml); use method=optimize")
        network = str(form.get("network") or next(iter(networks)))
        if network not in networks:
            raise BadUpload(f"unknown network {network!r}; this server has {', '.join(networks)}")
        known = {name: Path() for name in networks[network].styles}
        if painting:
            raise BadUpload("a fast network paints its own style: your painting needs method=optimize")
    style = None if painting else str(form.get("style") or next(iter(known)))
    style2 = str(form.get("style2") or "") or None
    for name in (style, style2):
        if name is not None and name not in known:
            raise BadUpload(f"unknown style {name!r}; choose one of {', '.join(known)}")
    blend = _number(form, "blend", 0.5, 0.0, 1.0, float) if style2 else 0.0
    preserve_color = _flag(form, "preserve_color")
    if preserve_color and info.kind == "video":
        raise BadUpload("colour preservation works on photos; turn it off for a video")
    return JobRequest(
        method=method, network=network, style=style, style2=style2, blend=blend, preserve_color=preserve_color,
        max_size=_number(form, "max_size", settings.max_size, 32, settings.max_size_limit),
        side_by_side=_flag(form, "side_by_side"), metrics=_flag(form, "metrics") and info.kind == "video",
        iterations=_number(form, "iterations", settings.iterations, 1, 5000),
    )


def compose(name: str, overrides: list[str]) -> DictConfig:
    """``conf/<name>.yaml`` with command-line ``overrides``, as the entry point would compose it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with _compose_lock:
        if GlobalHydra.instance().is_initialized():  # inside web.py's own Hydra app: the same conf/
            return hydra_compose(name, overrides=overrides)
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return hydra_compose(name, overrides=overrides)


def result_suffix(info: MediaInfo) -> str:
    """What the result is written as: the input's own format where browsers show it, else PNG or MP4."""
    if info.kind == "image":
        return info.suffix if info.suffix in (".jpg", ".png", ".webp") else ".png"
    return info.suffix if info.suffix in (".webm", ".gif") else ".mp4"


def job_config(request: JobRequest, info: MediaInfo, folder: Path, settings: WebSettings,
               networks: Mapping[str, Network], styles: Mapping[str, Path], painting: Path | None) -> DictConfig:
    """The infer.py or optimize.py config of this job, every path in its folder."""
    content, output = folder / f"input{info.suffix}", folder / f"result{result_suffix(info)}"
    names = [n for n in (request.style, request.style2) if n is not None]
    weights = [1.0 - request.blend, request.blend] if request.style2 else [1.0]
    if request.method == "fast":
        cfg = compose("infer", list(settings.infer_overrides))
        values = {
            "weights": str(networks[request.network].path), "input": str(content), "output": str(output),
            # a limit, never an enlargement (infer.py scales photos to max_size either way)
            "max_size": request.max_size if max(info.width, info.height) > request.max_size else None,
            "side_by_side": request.side_by_side and info.kind == "video", "metrics": request.metrics,
            "style": {"image": "", "paintings": {}, "blend": dict(zip(names, weights))},
        }
    else:
        cfg = compose("optimize", [f"iterations={request.iterations}", *settings.optimize_overrides])
        images = [str(painting)] if painting is not None else [str(styles[n]) for n in names]
        values = {
            "content": str(content), "output": str(output),  # a video's frames are scaled to max_size: a limit here
            "max_size": min(request.max_size, max(info.width, info.height)),
            "preserve_color": request.preserve_color,
            "style": {**OmegaConf.to_container(cfg.style), "image": images if len(images) > 1 else images[0],
                      "blend": weights if len(images) > 1 else None},
            "video": {**OmegaConf.to_container(cfg.video), "side_by_side": request.side_by_side,
                      "metrics": request.metrics},
        }
    with open_dict(cfg):
        for key, value in {**values, "device": settings.device, "paths.output_dir": str(folder / "work")}.items():
            OmegaConf.update(cfg, key, value, merge=False)
    return cfg
