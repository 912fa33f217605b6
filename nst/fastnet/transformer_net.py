"""The fast style network of Johnson et al. 2016 (Table II), rebuildable from its ``model_args``.

Three convs down, residual blocks at 1/4 resolution, two upsampling blocks back, one 9x9 conv to RGB.
The network is rebuilt from ``model_args`` (nanoGPT style); the weights file lives in :mod:`nst.fastnet.export`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nst.errors import NSTError

UPSAMPLE_MODES = ("deconv", "nearest")
#: Output layers: ``sigmoid`` (ours) or ``clamp`` to [0, 1] (networks trained on 0-255 with a linear output,
#: as imported by :mod:`nst.fastnet.formats`).
OUTPUT_MODES = ("sigmoid", "clamp")
#: The net divides H and W by 4; inputs are padded to a multiple of this.
MULTIPLE = 4
#: Smallest padded side the inner reflection pads accept: the 9x9 pad (4) needs > 4 px, and the
#: 3x3 pads at 1/4 resolution need >= 2 px there.
MIN_PADDED_SIDE = 8


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

    def __init__(
        self, upsample: str = "deconv", base_channels: int = 32, num_residual: int = 5, output: str = "sigmoid"
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise NSTError(f"unknown upsample mode {upsample!r}; use one of {', '.join(UPSAMPLE_MODES)}")
        if output not in OUTPUT_MODES:
            raise NSTError(f"unknown output mode {output!r}; use one of {', '.join(OUTPUT_MODES)}")
        if base_channels < 1 or num_residual < 0:
            raise NSTError(
                f"invalid TransformerNet size (base_channels={base_channels}, num_residual={num_residual}); "
                "use base_channels >= 1 and num_residual >= 0"
            )
        self._args = {"upsample": upsample, "base_channels": int(base_channels), "num_residual": int(num_residual)}
        if output != "sigmoid":  # only when set: weights files of our own networks keep their three keys
            self._args["output"] = output
        self.output = output
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
        y = y[..., :h, :w]
        return torch.sigmoid(y) if self.output == "sigmoid" else y.clamp(0, 1)


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
