"""State dicts in the layouts of PyTorch's fast_neural_style and of the seed repository, made here with random
values of the right shapes, and plain functional forwards of those networks (0-255 in and out) to compare with."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _conv(g: torch.Generator, c_out: int, c_in: int, k: int, transposed: bool = False) -> dict[str, torch.Tensor]:
    shape = (c_in, c_out, k, k) if transposed else (c_out, c_in, k, k)
    scale = (c_in * k * k) ** -0.5
    return {"weight": torch.randn(*shape, generator=g) * scale, "bias": torch.randn(c_out, generator=g) * 0.1}


def _norm(g: torch.Generator, c: int) -> dict[str, torch.Tensor]:
    return {"weight": 1 + 0.1 * torch.randn(c, generator=g), "bias": 0.1 * torch.randn(c, generator=g)}


def _layers(c: int, res: int, seed_layout: bool) -> list[tuple[str, str, tuple]]:
    """(name, kind, args) of each layer in forward order, named as the layout names it."""
    if seed_layout:
        enc = [("ConvBlock.0.conv_layer", 3, c, 9), ("ConvBlock.2.conv_layer", c, 2 * c, 3),
               ("ConvBlock.4.conv_layer", 2 * c, 4 * c, 3)]
        norms = ["ConvBlock.0.norm_layer", "ConvBlock.2.norm_layer", "ConvBlock.4.norm_layer"]
        block = [(f"ResidualBlock.{i}.conv{j}.conv_layer", f"ResidualBlock.{i}.conv{j}.norm_layer")
                 for i in range(res) for j in (1, 2)]
        dec = [("DeconvBlock.0.conv_transpose", "DeconvBlock.0.norm_layer"),
               ("DeconvBlock.2.conv_transpose", "DeconvBlock.2.norm_layer")]
        head = "DeconvBlock.4.conv_layer"
    else:
        enc = [("conv1.conv2d", 3, c, 9), ("conv2.conv2d", c, 2 * c, 3), ("conv3.conv2d", 2 * c, 4 * c, 3)]
        norms = ["in1", "in2", "in3"]
        block = [(f"res{i + 1}.conv{j}.conv2d", f"res{i + 1}.in{j}") for i in range(res) for j in (1, 2)]
        dec = [("deconv1.conv2d", "in4"), ("deconv2.conv2d", "in5")]
        head = "deconv3.conv2d"
    return [("enc", enc, norms), ("res", block, None), ("dec", dec, None), ("head", head, None)]  # type: ignore


def foreign_state(layout: str, base: int = 4, num_residual: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict of ``layout`` ("fast_neural_style" or "seed") whose output lies mostly in 0-255."""
    g = torch.Generator().manual_seed(seed)
    seed_layout = layout == "seed"
    (_, enc, norms), (_, block, _), (_, dec, _), (_, head, _) = _layers(base, num_residual, seed_layout)
    state: dict[str, dict[str, torch.Tensor]] = {}
    for (name, c_in, c_out, k), norm in zip(enc, norms, strict=True):
        state[name], state[norm] = _conv(g, c_out, c_in, k), _norm(g, c_out)
    state[enc[0][0]]["weight"] /= 255  # inputs are 0-255
    for conv, norm in block:
        state[conv], state[norm] = _conv(g, 4 * base, 4 * base, 3), _norm(g, 4 * base)
    for (conv, norm), (c_in, c_out) in zip(dec, ((4 * base, 2 * base), (2 * base, base)), strict=True):
        state[conv], state[norm] = _conv(g, c_out, c_in, 3, transposed=seed_layout), _norm(g, c_out)
    state[head] = _conv(g, 3, base, 9)
    state[head]["weight"] *= 60
    state[head]["bias"] += 127
    flat = {f"{name}.{param}": value for name, params in state.items() for param, value in params.items()}
    if layout == "fast_neural_style":  # files saved by old PyTorch versions carry these; the example drops them
        flat["in1.running_mean"], flat["in1.running_var"] = torch.zeros(base), torch.ones(base)
    return flat


def foreign_forward(state: dict[str, torch.Tensor], layout: str, x255: torch.Tensor) -> torch.Tensor:
    """The network of ``layout`` as its own repository runs it: 0-255 in, 0-255 out (not clamped)."""
    seed_layout = layout == "seed"
    num_residual = sum(1 for k in state if k.endswith(("conv1.conv_layer.weight", "conv1.conv2d.weight"))
                       and ("ResidualBlock" in k or k.startswith("res")))
    base = state["ConvBlock.0.conv_layer.weight" if seed_layout else "conv1.conv2d.weight"].shape[0]
    (_, enc, norms), (_, block, _), (_, dec, _), (_, head, _) = _layers(base, num_residual, seed_layout)

    def conv(x: torch.Tensor, name: str, stride: int = 1) -> torch.Tensor:
        k = state[f"{name}.weight"].shape[-1]
        return F.conv2d(F.pad(x, [k // 2] * 4, mode="reflect"), state[f"{name}.weight"], state[f"{name}.bias"], stride)

    def norm(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.instance_norm(x, weight=state[f"{name}.weight"], bias=state[f"{name}.bias"])

    y = x255
    for (name, *_), norm_name, stride in zip(enc, norms, (1, 2, 2), strict=True):
        y = F.relu(norm(conv(y, name, stride), norm_name))
    for i in range(0, len(block), 2):
        (c1, n1), (c2, n2) = block[i], block[i + 1]
        y = y + norm(conv(F.relu(norm(conv(y, c1), n1)), c2), n2)
    for name, norm_name in dec:
        if seed_layout:
            y = F.conv_transpose2d(y, state[f"{name}.weight"], state[f"{name}.bias"], 2, 1, 1)
        else:
            y = conv(F.interpolate(y, scale_factor=2, mode="nearest"), name)
        y = F.relu(norm(y, norm_name))
    return conv(y, head)
