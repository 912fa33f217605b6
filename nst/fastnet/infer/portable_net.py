"""Scriptable forms of :class:`TransformerNet` that TorchScript and ONNX keep dynamic in batch, height and width.

:class:`PortableNet` is the network's forward with its padding computed from the input's shape at run time (a
traced forward would freeze the padding of the example's size). :class:`PortableStyleNet` does the same for a
multi-style network and takes the style as an input: a conditional instance norm (Dumoulin, Shlens & Kudlur 2017)
reads its style weights from state that :class:`TransformerNet` sets before each forward, which a scripted or ONNX
graph cannot hold, so here the (B, num_styles) weights are passed down the layers instead. Both share the
network's parameters (no copy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nst.fastnet.transformer_net import MIN_PADDED_SIDE, MULTIPLE, CondInstanceNorm2d, ResidualBlock, TransformerNet


def pad_to_multiple(x: torch.Tensor, multiple: int, min_side: int) -> torch.Tensor:
    """Reflection-pad H and W bottom/right to a multiple of ``multiple`` (at least ``min_side``), as the network
    does; the amounts come from the input's shape, so they stay dynamic once scripted or exported."""
    h, w = x.shape[2], x.shape[3]
    ph = max(min_side, (h + multiple - 1) // multiple * multiple) - h
    pw = max(min_side, (w + multiple - 1) // multiple * multiple) - w
    return F.pad(x, [0, pw, 0, ph], mode="reflect")


class PortableNet(nn.Module):
    """The forward of a single-style :class:`TransformerNet`: ``image`` (B,3,H,W) in [0, 1] -> the same shape.

    Matches the network for inputs of 8 px and more (shorter sides cannot be reflected).
    """

    def __init__(self, net: TransformerNet) -> None:
        super().__init__()
        net = getattr(net, "_orig_mod", net)
        self.encoder, self.residuals, self.decoder, self.head = net.encoder, net.residuals, net.decoder, net.head
        self.sigmoid = net.output == "sigmoid"
        self.multiple, self.min_side = MULTIPLE, MIN_PADDED_SIDE  # attributes: TorchScript reads no globals

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        y = pad_to_multiple(x, self.multiple, self.min_side)
        y = self.head(self.decoder(self.residuals(self.encoder(y))))[:, :, :h, :w]
        return torch.sigmoid(y) if self.sigmoid else y.clamp(0, 1)


class PortableStyleNet(nn.Module):
    """The forward of a multi-style :class:`TransformerNet`: ``image`` (B,3,H,W) in [0, 1] and ``style``
    (B, num_styles) -> (B,3,H,W).

    A ``style`` row is a one-hot pick or any non-negative weights with a positive sum; rows are divided by their
    sum here, so ``[1, 1, 0]`` is the 50/50 blend that ``TransformerNet.forward(x, style=[[1, 1, 0]])`` paints
    (the paper's interpolation of the norm parameters).
    """

    def __init__(self, net: TransformerNet) -> None:
        super().__init__()
        net = getattr(net, "_orig_mod", net)
        self.body = _Chain([_styled(net.encoder), _styled(net.residuals), _styled(net.decoder)])
        self.head = net.head
        self.sigmoid = net.output == "sigmoid"
        self.multiple, self.min_side = MULTIPLE, MIN_PADDED_SIDE

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[2], image.shape[3]
        style = style / style.sum(dim=1, keepdim=True)
        y = self.body(pad_to_multiple(image, self.multiple, self.min_side), style)
        y = self.head(y)[:, :, :h, :w]
        return torch.sigmoid(y) if self.sigmoid else y.clamp(0, 1)


class _Plain(nn.Module):
    """A layer the style does not reach, in the (x, style) signature of the others."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class _CondNorm(nn.Module):
    """:class:`CondInstanceNorm2d` with its style weights as an argument: instance norm without affine, then
    ``style @ weight`` and ``style @ bias`` as each image's per-channel scale and shift."""

    def __init__(self, norm: CondInstanceNorm2d) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.norm.eps  # the network's own parameters

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        scale = (style @ self.weight).unsqueeze(-1).unsqueeze(-1)
        shift = (style @ self.bias).unsqueeze(-1).unsqueeze(-1)
        return F.instance_norm(x, eps=self.eps) * scale + shift


class _Chain(nn.Module):
    """A sequence of (x, style) layers."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, style)
        return x


class _Residual(nn.Module):
    """:class:`ResidualBlock`'s identity skip around an (x, style) body."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return x + self.body(x, style)


def _styled(module: nn.Module) -> nn.Module:
    """``module`` rebuilt from (x, style) layers: each conditional norm takes the style, the rest is wrapped."""
    if isinstance(module, CondInstanceNorm2d):
        return _CondNorm(module)
    if not any(isinstance(m, CondInstanceNorm2d) for m in module.modules()):
        return _Plain(module)
    if isinstance(module, ResidualBlock):
        return _Residual(_styled(module.body))
    if isinstance(module, nn.Sequential):
        return _Chain([_styled(m) for m in module])
    raise TypeError(f"no portable form of {type(module).__name__} with a style input")
