"""The fast style network of Johnson et al. 2016 (Table II), rebuildable from its ``model_args``.

Three convs down, residual blocks at 1/4 resolution, two upsampling blocks back, one 9x9 conv to RGB.
The network is rebuilt from ``model_args`` (nanoGPT style); the weights file lives in :mod:`nst.fastnet.weights`.

Given several ``styles``, every instance norm becomes a conditional instance norm (Dumoulin, Shlens & Kudlur
2017, "A Learned Representation for Artistic Style"): one scale and shift per style, all convolutions shared.
The style is chosen per image at call time, by name, index or a blend of weights (the paper's interpolation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nst.errors import NSTError

UPSAMPLE_MODES = ("deconv", "nearest")
#: Output layers: ``sigmoid`` (ours) or ``clamp`` to [0, 1] (networks trained on 0-255 with a linear output,
#: as imported by :mod:`nst.fastnet.foreign_weights`).
OUTPUT_MODES = ("sigmoid", "clamp")
#: The net divides H and W by 4; inputs are padded to a multiple of this.
MULTIPLE = 4
#: Smallest padded side the inner reflection pads accept: the 9x9 pad (4) needs > 4 px, and the
#: 3x3 pads at 1/4 resolution need >= 2 px there.
MIN_PADDED_SIDE = 8


#: What selects the style of a multi-style network: a name, an index, a {name: weight} blend, (B,) indices,
#: or (S,) / (B, S) blend weights.
StyleChoice = str | int | Mapping[str, float] | torch.Tensor | None


class CondInstanceNorm2d(nn.Module):
    """Instance norm with one (scale, shift) per style, mixed by per-image style weights (Dumoulin et al. 2017).

    ``weight`` and ``bias`` are (num_styles, channels). :class:`TransformerNet` sets ``mix`` (B, num_styles),
    the style weights of the batch, before each forward; a one-hot row selects one style, a convex
    combination interpolates the norm parameters, which is the paper's style interpolation.
    """

    def __init__(self, channels: int, num_styles: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.weight = nn.Parameter(torch.ones(num_styles, channels))
        self.bias = nn.Parameter(torch.zeros(num_styles, channels))
        self.mix: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mix is None:
            raise RuntimeError("CondInstanceNorm2d needs its style weights; call it through TransformerNet")
        mix = self.mix.to(self.weight.dtype)
        scale, shift = (mix @ self.weight)[..., None, None], (mix @ self.bias)[..., None, None]
        return self.norm(x) * scale.to(x.dtype) + shift.to(x.dtype)


def _instance_norm(channels: int, num_styles: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True) if num_styles == 1 else CondInstanceNorm2d(channels, num_styles)


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, bias: bool = True) -> nn.Sequential:
    """Reflection pad + unpadded conv: avoids the dark borders of zero padding (Johnson 2016, suppl.)."""
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride, bias=bias))


def _norm_relu(channels: int, num_styles: int) -> list[nn.Module]:
    return [_instance_norm(channels, num_styles), nn.ReLU(inplace=True)]


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int = 1, num_styles: int = 1) -> nn.Sequential:
    # No conv bias: instance norm subtracts the per-channel mean, so a bias would get no gradient.
    return nn.Sequential(*_conv(c_in, c_out, kernel, stride, bias=False), *_norm_relu(c_out, num_styles))


def _up_block(c_in: int, c_out: int, upsample: str, num_styles: int = 1) -> nn.Sequential:
    """x2 upsampling: the paper's transposed conv, or nearest + conv (no checkerboard, Odena 2016)."""
    if upsample == "deconv":
        up: list[nn.Module] = [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=False)]
    else:
        up = [nn.Upsample(scale_factor=2, mode="nearest"), *_conv(c_in, c_out, 3, bias=False)]
    return nn.Sequential(*up, *_norm_relu(c_out, num_styles))


class ResidualBlock(nn.Module):
    """Two 3x3 convs with instance norm, ReLU after the first only, identity skip (Gross & Wilber 2016)."""

    def __init__(self, channels: int, num_styles: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_block(channels, channels, 3, num_styles=num_styles),
            *_conv(channels, channels, 3, bias=False),
            _instance_norm(channels, num_styles),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Johnson et al. 2016 image transformation network: (B,3,H,W) in [0,1] -> same shape in [0,1].

    Any H, W >= 1 works: the input is padded bottom/right to a multiple of 4 (at least 8) and the
    output cropped back, so odd video frames need no resizing. A sigmoid replaces the paper's
    scaled tanh to keep the [0,1] convention used everywhere else.

    ``styles``: the names of the styles of a multi-style network (two or more: conditional instance norm,
    Dumoulin et al. 2017); ``None`` or one name builds the plain single-style network of the paper.
    """

    def __init__(
        self,
        upsample: str = "deconv",
        base_channels: int = 32,
        num_residual: int = 5,
        output: str = "sigmoid",
        styles: Sequence[str] | None = None,
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
        names = [str(name) for name in (styles or [])]
        if len(set(names)) != len(names):
            raise NSTError(f"the style names of a network must differ, got {names}")
        self._args = {"upsample": upsample, "base_channels": int(base_channels), "num_residual": int(num_residual)}
        if output != "sigmoid":  # only when set: weights files of our own networks keep their three keys
            self._args["output"] = output
        if names:
            self._args["styles"] = names
        self.output = output
        self.styles = names
        n = max(1, len(names))
        c = base_channels
        self.encoder = nn.Sequential(
            _conv_block(3, c, 9, num_styles=n), _conv_block(c, 2 * c, 3, 2, n), _conv_block(2 * c, 4 * c, 3, 2, n)
        )
        self.residuals = nn.Sequential(*(ResidualBlock(4 * c, n) for _ in range(num_residual)))
        self.decoder = nn.Sequential(_up_block(4 * c, 2 * c, upsample, n), _up_block(2 * c, c, upsample, n))
        self.head = _conv(c, 3, 9)
        self._cond_norms = [m for m in self.modules() if isinstance(m, CondInstanceNorm2d)]

    @property
    def model_args(self) -> dict[str, Any]:
        """The constructor arguments: ``TransformerNet(**net.model_args)`` rebuilds this architecture."""
        return dict(self._args)

    @property
    def num_styles(self) -> int:
        """How many styles the network paints: 1 for the plain network."""
        return max(1, len(self.styles))

    def style_weights(self, style: StyleChoice, batch: int) -> torch.Tensor:
        """(batch, num_styles) style weights, rows summing to 1, for any :data:`StyleChoice` (``None``: the
        first style)."""
        n = self.num_styles
        if isinstance(style, Mapping):
            unknown = [name for name in style if name not in self.styles]
            if unknown:
                raise NSTError(f"unknown style {unknown[0]!r} in the blend; this network paints {self._names()}")
            style = torch.tensor([float(style.get(name, 0.0)) for name in self.styles])
        if style is None or isinstance(style, (str, int)):
            style = torch.full((batch,), self.style_index(style or 0), dtype=torch.long)
        if not style.is_floating_point():
            if style.dim() == 0:
                style = style.expand(batch)
            return F.one_hot(style.long().cpu(), n).float()
        weights = style.float().cpu().reshape(-1, n) if style.numel() % n == 0 else None
        if weights is None or (weights < 0).any() or (weights.sum(-1) <= 0).any():
            raise NSTError(f"style weights must be {n} non-negative numbers with a positive sum, got {style.tolist()}")
        weights = weights / weights.sum(-1, keepdim=True)
        return weights.expand(batch, -1) if len(weights) == 1 else weights

    def style_index(self, style: str | int) -> int:
        """The index of a style given by name or index."""
        if isinstance(style, str):
            if style not in self.styles:
                raise NSTError(f"unknown style {style!r}; this network paints {self._names()}")
            return self.styles.index(style)
        if not 0 <= style < self.num_styles:
            raise NSTError(f"style index {style} out of range; this network paints {self._names()}")
        return int(style)

    def single_style(self, style: StyleChoice = None) -> TransformerNet:
        """A plain single-style network that paints ``style`` (a name, an index or a blend): each conditional
        norm's scale and shift mixed once into an ordinary affine instance norm (Dumoulin et al. 2017's
        interpolation), so engines, ONNX and TorchScript run it like any Johnson network. A plain network
        returns itself, whatever ``style`` says."""
        if not self._cond_norms:
            return self
        mix = self.style_weights(style, 1)[0]
        args = {k: v for k, v in self._args.items() if k != "styles"}
        chosen = [self.styles[int(mix.argmax())]] if float(mix.max()) == 1.0 else None
        plain = TransformerNet(**args, styles=chosen)
        norms = self._norm_names
        state = {
            key: mix.to(value) @ value if key.rsplit(".", 1)[0] in norms else value
            for key, value in self.state_dict().items()
        }
        plain.load_state_dict(state)
        return plain.to(next(self.parameters()).device).train(self.training)

    @property
    def _norm_names(self) -> set[str]:
        return {name for name, m in self.named_modules() if isinstance(m, CondInstanceNorm2d)}

    def _names(self) -> str:
        return ", ".join(self.styles) if self.styles else "one style"

    def forward(self, x: torch.Tensor, style: StyleChoice = None) -> torch.Tensor:
        """Stylize ``x``; ``style`` picks or blends the styles of a multi-style network (ignored otherwise,
        where only ``None``, 0 or the network's own name are accepted)."""
        h, w = x.shape[-2:]
        if self._cond_norms:
            mix = self.style_weights(style, len(x)).to(x.device)
            for norm in self._cond_norms:
                norm.mix = mix
        elif style is not None and not (isinstance(style, (str, int)) and style in (0, *self.styles)):
            if not isinstance(style, torch.Tensor) or bool((style != 0).any()):
                raise NSTError(f"this network paints one style; cannot select {style!r}")
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
