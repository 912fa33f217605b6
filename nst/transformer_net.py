"""The fast style network of Johnson et al. 2016 (Table II), rebuildable from its ``model_args``.

Three convs down, residual blocks at 1/4 resolution, two upsampling blocks back, one 9x9 conv to RGB.
The weights file that inference loads is ``{"model_args": ..., "state_dict": ...}`` (nanoGPT style).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nst.errors import NSTError
from nst.files import atomic_path

UPSAMPLE_MODES = ("deconv", "nearest")
#: The net divides H and W by 4; inputs are padded to a multiple of this.
MULTIPLE = 4
#: Smallest padded side the inner reflection pads accept: the 9x9 pad (4) needs > 4 px, and the
#: 3x3 pads at 1/4 resolution need >= 2 px there.
MIN_PADDED_SIDE = 8
_PREFIXES = ("_orig_mod.", "net.")


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, bias: bool = True) -> nn.Sequential:
    """Reflection pad + unpadded conv: avoids the dark borders of zero padding (Johnson 2016, suppl.)."""
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride, bias=bias))


def _norm_relu(channels: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(channels, affine=True), nn.ReLU(inplace=True)]


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    # No conv bias: instance norm subtracts the per-channel mean, so a bias would get no gradient.
    return nn.Sequential(*_conv(c_in, c_out, kernel, stride, bias=False), *_norm_relu(c_out))


def _up_block(c_in: int, c_out: int, upsample: str) -> nn.Sequential:
    """x2 upsampling: the paper's transposed conv, or nearest + conv (no checkerboard, Odena 2016)."""
    if upsample == "deconv":
        up: list[nn.Module] = [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=False)]
    else:
        up = [nn.Upsample(scale_factor=2, mode="nearest"), *_conv(c_in, c_out, 3, bias=False)]
    return nn.Sequential(*up, *_norm_relu(c_out))


class ResidualBlock(nn.Module):
    """Two 3x3 convs with instance norm, ReLU after the first only, identity skip (Gross & Wilber 2016)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_block(channels, channels, 3),
            *_conv(channels, channels, 3, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Johnson et al. 2016 image transformation network: (B,3,H,W) in [0,1] -> same shape in [0,1].

    Any H, W >= 1 works: the input is padded bottom/right to a multiple of 4 (at least 8) and the
    output cropped back, so odd video frames need no resizing. A sigmoid replaces the paper's
    scaled tanh to keep the [0,1] convention used everywhere else.
    """

    def __init__(self, upsample: str = "deconv", base_channels: int = 32, num_residual: int = 5) -> None:
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise NSTError(f"unknown upsample mode {upsample!r}; use one of {', '.join(UPSAMPLE_MODES)}")
        if base_channels < 1 or num_residual < 0:
            raise NSTError(
                f"invalid TransformerNet size (base_channels={base_channels}, num_residual={num_residual}); "
                "use base_channels >= 1 and num_residual >= 0"
            )
        self._args = {"upsample": upsample, "base_channels": int(base_channels), "num_residual": int(num_residual)}
        c = base_channels
        self.encoder = nn.Sequential(_conv_block(3, c, 9), _conv_block(c, 2 * c, 3, 2), _conv_block(2 * c, 4 * c, 3, 2))
        self.residuals = nn.Sequential(*(ResidualBlock(4 * c) for _ in range(num_residual)))
        self.decoder = nn.Sequential(_up_block(4 * c, 2 * c, upsample), _up_block(2 * c, c, upsample))
        self.head = _conv(c, 3, 9)

    @property
    def model_args(self) -> dict[str, Any]:
        """The constructor arguments: ``TransformerNet(**net.model_args)`` rebuilds this architecture."""
        return dict(self._args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = _pad_bottom_right(x)
        y = self.decoder(self.residuals(self.encoder(y)))
        # The RGB head runs in float32 even under bf16 autocast: bf16's 8-bit mantissa would quantise the
        # output to ~0.002 steps, as large as the differences the noise stability loss must see.
        with torch.autocast(device_type=y.device.type, enabled=False):
            y = self.head(y.float())
        return torch.sigmoid(y[..., :h, :w])


def _pad_amount(size: int) -> int:
    target = max(MIN_PADDED_SIDE, -(-size // MULTIPLE) * MULTIPLE)
    return target - size


def _pad_bottom_right(x: torch.Tensor) -> torch.Tensor:
    """Reflect-pad H and W up to a multiple of 4; replicate where a side is too short to reflect."""
    ph, pw = _pad_amount(x.shape[-2]), _pad_amount(x.shape[-1])
    if ph == 0 and pw == 0:
        return x
    if ph < x.shape[-2] and pw < x.shape[-1]:
        return F.pad(x, (0, pw, 0, ph), mode="reflect")
    if pw:
        x = F.pad(x, (0, pw, 0, 0), mode="reflect" if pw < x.shape[-1] else "replicate")
    if ph:
        x = F.pad(x, (0, 0, 0, ph), mode="reflect" if ph < x.shape[-2] else "replicate")
    return x


def _strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop leading ``_orig_mod.`` (torch.compile) and ``net.`` (LightningModule attribute) prefixes."""
    out = {}
    for key, value in state_dict.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix) :], True
        out[key] = value
    return out


def export_weights(net: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``{"model_args", "state_dict"}`` (CPU, float32) atomically: the small file inference loads.

    Accepts a ``torch.compile``-d net; its ``_orig_mod.`` prefixes are removed.
    """
    path = Path(path)
    net = getattr(net, "_orig_mod", net)
    model_args = getattr(net, "model_args", None)
    if not isinstance(model_args, dict):
        raise NSTError(f"cannot export {type(net).__name__} to {path}: it has no model_args; pass a TransformerNet")
    state_dict = {
        k: v.detach().to(device="cpu", dtype=torch.float32).contiguous()
        for k, v in _strip_prefixes(net.state_dict()).items()
    }
    try:
        with atomic_path(path) as tmp:
            torch.save({"model_args": dict(model_args), "state_dict": state_dict}, tmp)
    except (OSError, RuntimeError) as exc:
        raise NSTError(f"cannot write weights file {path}: {_first_line(exc)}; check the folder is writable") from exc
    return path


def load_exported(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> TransformerNet:
    """Rebuild a :class:`TransformerNet` from a file written by :func:`export_weights`; returned in eval mode.

    Loads with ``weights_only=True`` (no arbitrary code from pickles).
    """
    path = Path(path)
    hint = "pass the exported .pt file written at the end of training"
    if not path.is_file():
        raise NSTError(f"weights file not found: {path}; {hint}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for bad files (UnpicklingError, RuntimeError, EOFError...)
        # torch's own text here suggests weights_only=False, which is unsafe advice for a user.
        raise NSTError(
            f"cannot read weights file {path} ({type(exc).__name__}): not a torch file of plain tensors; {hint}"
        ) from exc
    if not _is_export(data):
        if isinstance(data, dict) and ("pytorch-lightning_version" in data or "state_dict" in data):
            raise NSTError(f"{path}: this looks like a Lightning checkpoint; {hint}")
        raise NSTError(f"{path} is not an nst weights file (no model_args/state_dict); {hint}")
    try:
        net = TransformerNet(**data["model_args"])
    except (TypeError, NSTError) as exc:
        raise NSTError(f"bad model_args {data['model_args']} in {path}: {_first_line(exc)}; {hint}") from exc
    state_dict = _strip_prefixes(dict(data["state_dict"]))
    problem = _mismatch(net.state_dict(), state_dict)
    if problem:
        raise NSTError(f"weights in {path} do not match TransformerNet({data['model_args']}): {problem}; {hint}")
    net.load_state_dict(state_dict)
    return net.to(map_location).eval()


def _is_export(data: object) -> bool:
    """True for the ``export_weights`` format: a ``model_args`` dict next to a dict of tensors."""
    if not isinstance(data, dict) or not isinstance(data.get("model_args"), dict):
        return False
    sd = data.get("state_dict")
    return isinstance(sd, dict) and all(isinstance(v, torch.Tensor) for v in sd.values())


def _mismatch(expected: dict[str, torch.Tensor], found: dict[str, Any]) -> str:
    """Describe key and shape differences in one line ('' if none): torch's own message spans many lines."""
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        return f"{len(missing)} missing keys {missing[:2]}, {len(unexpected)} unexpected keys {unexpected[:2]}"
    shapes = [(k, tuple(found[k].shape), tuple(v.shape)) for k, v in expected.items() if found[k].shape != v.shape]
    if shapes:
        k, got, want = shapes[0]
        return f"{len(shapes)} tensors have the wrong shape (e.g. {k}: {got} in the file, {want} expected)"
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
