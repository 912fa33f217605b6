"""The server's settings (conf/web.yaml, built by :mod:`nst.app.web`) and the networks it offers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nst.errors import NSTError
from nst.fastnet.weights import load_weights

#: Rough speeds for the page's estimate before a job starts, in seconds per megapixel and unit (a frame of a
#: fast network, an iteration of an optimization): rough figures for a 2-core CPU and a recent GPU.
SPEED = {"cpu": {"fast": 2.0, "optimize": 100.0}, "cuda": {"fast": 0.01, "optimize": 0.15}}


@dataclass
class WebSettings:
    """Everything the server needs; see conf/web.yaml for each value."""

    jobs_dir: Path
    styles_dir: Path
    weights: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    device: str = "auto"
    max_upload_mb: float = 200.0
    max_pixels: int = 40_000_000
    max_video_seconds: float = 120.0
    max_size: int = 1024
    max_size_limit: int = 4096
    iterations: int = 300
    recent_jobs: int = 50
    infer_overrides: list[str] = field(default_factory=list)
    optimize_overrides: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Refuse, in one line, a server open to other machines without a token."""
        if not is_loopback(self.host) and not self.token:
            raise NSTError(f"host={self.host} lets other machines reach this server: give it a token "
                           "(token=SECRET or the environment variable NST_WEB_TOKEN), or leave host=127.0.0.1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Network:
    """A fast network the page offers: its file and the names of the styles it paints."""

    name: str
    path: Path
    styles: list[str]


def find_networks(weights: Path | None) -> tuple[dict[str, Network], str]:
    """The networks of ``weights`` (a file, or a folder of ``.pt``/``.pth``/``.ckpt`` files) and, when there
    are none, the line the page shows instead."""
    if weights is None:
        return {}, "no network is set (weights=PATH in conf/web.yaml): only optimize is offered"
    files = sorted(p for p in weights.iterdir() if p.suffix in (".pt", ".pth", ".ckpt")) if weights.is_dir() \
        else [weights] if weights.is_file() else []
    networks, problems = {}, []
    for path in files:
        try:
            net = load_weights(path, map_location=torch.device("cpu"))
        except NSTError as exc:
            problems.append(str(exc).splitlines()[0])
            continue
        networks[path.stem] = Network(path.stem, path, list(net.styles) or [path.stem])
    if networks:
        return networks, ""
    if problems:
        return {}, f"no usable network in {weights} ({problems[0]}): only optimize is offered"
    return {}, f"no network file at {weights} (train one with train.py, or set weights=PATH): only optimize is offered"
