"""torchvision's RAFT (Teed & Deng, *RAFT: Recurrent All-Pairs Field Transforms for Optical Flow*, ECCV 2020).

Weights come from torchvision's weights API (downloaded once into the torch hub cache) or from a local
state dict file; offline without a file, the error names both. Runs on the GPU when there is one.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.error import URLError

import torch
import torch.nn.functional as F
from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights, raft_large, raft_small

from nst.errors import NSTError
from nst.flow.estimator import FlowEstimator

_MODELS = {"large": (raft_large, Raft_Large_Weights), "small": (raft_small, Raft_Small_Weights)}
#: RAFT works at 1/8 resolution with a 4-level correlation pyramid: inputs are padded to this multiple and size.
_MULTIPLE, _MIN_SIDE = 8, 128


class RAFTFlow(FlowEstimator):
    """RAFT flow of frame t towards frame s.

    Args:
        model: ``large`` or ``small``.
        weights: a torchvision weights name (``DEFAULT``, ``C_T_SKHT_V2``, ``C_T_V2``, ...; downloaded once),
            the path of a local torchvision RAFT state dict (loaded with ``weights_only=True``), or ``random``
            (seeded; tests only).
        num_flow_updates: RAFT's recurrent refinement steps (torchvision's default 12).
        device: ``auto`` (the GPU when there is one), ``cpu``, ``cuda``, ``cuda:1``, ...
        seed: the seed of the ``random`` weights.
    """

    def __init__(
        self,
        model: str = "large",
        weights: str = "DEFAULT",
        num_flow_updates: int = 12,
        device: str = "auto",
        seed: int = 0,
    ):
        if model not in _MODELS:
            raise NSTError(f"flow.model must be 'large' or 'small', got {model!r}")
        if int(num_flow_updates) < 1:
            raise NSTError(f"flow.num_flow_updates must be at least 1, got {num_flow_updates}")
        build, enum = _MODELS[model]
        weights = str(weights)
        if weights == "random":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = build(weights=None)
            tag = f"random{seed}"
        else:
            net = build(weights=None)
            state, tag = _state_dict(model, enum, weights)
            try:
                net.load_state_dict(state)
            except RuntimeError as exc:
                first = str(exc).splitlines()[0]
                raise NSTError(f"flow.weights={weights} is not a RAFT-{model} state dict ({first})") from None
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except RuntimeError:
            raise NSTError(f"flow.device must be auto, cpu or cuda[:N], got {device!r}") from None
        self.net = net.eval().requires_grad_(False).to(self.device)
        self.model = model
        self.num_flow_updates = int(num_flow_updates)
        self.name = f"raft-{model}-{tag}-{self.num_flow_updates}"

    def estimate(self, frame_t: torch.Tensor, frame_s: torch.Tensor) -> torch.Tensor:
        h, w = frame_t.shape[-2:]
        pad_h = max(_MIN_SIDE, -(-h // _MULTIPLE) * _MULTIPLE) - h
        pad_w = max(_MIN_SIDE, -(-w // _MULTIPLE) * _MULTIPLE) - w
        pair = torch.cat([frame_t, frame_s]).to(self.device, torch.float32) * 2.0 - 1.0  # RAFT wants [-1, 1]
        pair = F.pad(pair, (0, pad_w, 0, pad_h), mode="replicate")
        first, second = pair.chunk(2)
        flow = self.net(first, second, num_flow_updates=self.num_flow_updates)[-1]
        return flow[..., :h, :w]


def _state_dict(model: str, enum: type, weights: str) -> tuple[dict[str, torch.Tensor], str]:
    if weights in enum.__members__:
        member = enum[weights]
        return _download(model, member), member.name
    return _local(Path(weights).expanduser(), model, enum)


def _download(model: str, member) -> dict[str, torch.Tensor]:
    url = member.url
    try:
        return torch.hub.load_state_dict_from_url(url, progress=True, check_hash=True, weights_only=True)
    except (URLError, OSError, RuntimeError, ConnectionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
        raise NSTError(
            f"could not download the RAFT-{model} weights {member.name} from {url} ({reason}); offline, either "
            f"set flow.weights=/path/to/{Path(url).name} (a torchvision RAFT state dict) or copy that file to {cached}"
        ) from None


def _local(path: Path, model: str, enum: type) -> tuple[dict[str, torch.Tensor], str]:
    if not path.is_file():
        names = ", ".join(enum.__members__)
        raise NSTError(f"flow.weights: no such file {path}; use a torchvision weights name ({names}) or a RAFT .pth")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        raise NSTError(f"flow.weights: cannot read {path} as a PyTorch state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NSTError(f"flow.weights: {path} does not hold a state dict of tensors")
    stat = path.stat()
    digest = hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:8]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)
    return state, f"{stem}-{digest}"
