"""Weights from elsewhere: three state-dict layouts, detected by their keys, mapped onto :class:`TransformerNet`.

* ``nst``: our own export (``model_args`` + ``state_dict``, :mod:`nst.fastnet.weights`).
* ``fast_neural_style``: PyTorch's example (pytorch/examples), Johnson et al. 2016 with nearest-neighbour
  upsampling (``conv1.conv2d.weight``, ``in1.weight``, ``res1.conv1.conv2d.weight``, ..., ``deconv3``).
* ``seed``: the seed paper's repository's ``models/*.pth``, the same network with transposed-conv upsampling
  (``ConvBlock.0.conv_layer.weight``, ``ResidualBlock.0.conv1.norm_layer.weight``, ``DeconvBlock.0.conv_transpose``).

Both foreign networks work on a 0-255 scale with a linear output. The mapping is exact, not an approximation:
the first conv's weights are multiplied by 255 (a [0, 1] input gives the same activations), the last conv's
weights and bias are divided by 255 and the output is clamped to [0, 1] (``output="clamp"``), and the biases of
convs followed by instance norm are dropped, since the norm subtracts each channel's mean (and a bias with it).
"""

from __future__ import annotations

import re

import torch

from nst.errors import NSTError
from nst.fastnet.transformer_net import TransformerNet

FORMATS = ("nst", "fast_neural_style", "seed")
_SCALE = 255.0
#: Keys that identify a foreign layout (both must be present).
MARKERS = {
    "fast_neural_style": ("conv1.conv2d.weight", "deconv1.conv2d.weight"),
    "seed": ("ConvBlock.0.conv_layer.weight", "DeconvBlock.0.conv_transpose.weight"),
}
#: Old fast_neural_style files carry instance-norm running stats that its own loader deletes too.
_STALE = re.compile(r"in\d+\.running_(mean|var)$|.*\.num_batches_tracked$")


def _fns_names(num_residual: int) -> dict[str, str]:
    """Our module name -> fast_neural_style's (norms keep weight and bias; convs before a norm lose their bias)."""
    names = {"encoder.0.1": "conv1.conv2d", "encoder.0.2": "in1", "encoder.1.1": "conv2.conv2d",
             "encoder.1.2": "in2", "encoder.2.1": "conv3.conv2d", "encoder.2.2": "in3",
             "decoder.0.2": "deconv1.conv2d", "decoder.0.3": "in4", "decoder.1.2": "deconv2.conv2d",
             "decoder.1.3": "in5", "head.1": "deconv3.conv2d"}
    for i in range(num_residual):
        ours, theirs = f"residuals.{i}.body", f"res{i + 1}"
        names |= {f"{ours}.0.1": f"{theirs}.conv1.conv2d", f"{ours}.0.2": f"{theirs}.in1",
                  f"{ours}.2": f"{theirs}.conv2.conv2d", f"{ours}.3": f"{theirs}.in2"}
    return names


def _seed_names(num_residual: int) -> dict[str, str]:
    """Our module name -> the seed repository's."""
    names = {}
    for ours, theirs in (("encoder.0", "ConvBlock.0"), ("encoder.1", "ConvBlock.2"), ("encoder.2", "ConvBlock.4")):
        names |= {f"{ours}.1": f"{theirs}.conv_layer", f"{ours}.2": f"{theirs}.norm_layer"}
    for ours, theirs in (("decoder.0", "DeconvBlock.0"), ("decoder.1", "DeconvBlock.2")):
        names |= {f"{ours}.0": f"{theirs}.conv_transpose", f"{ours}.1": f"{theirs}.norm_layer"}
    names["head.1"] = "DeconvBlock.4.conv_layer"
    for i in range(num_residual):
        ours, theirs = f"residuals.{i}.body", f"ResidualBlock.{i}"
        names |= {f"{ours}.0.1": f"{theirs}.conv1.conv_layer", f"{ours}.0.2": f"{theirs}.conv1.norm_layer",
                  f"{ours}.2": f"{theirs}.conv2.conv_layer", f"{ours}.3": f"{theirs}.conv2.norm_layer"}
    return names


def detect_format(data: object) -> str | None:
    """``"nst"``, ``"fast_neural_style"``, ``"seed"``, or None for anything else (decided by the keys alone)."""
    if isinstance(data, dict) and isinstance(data.get("model_args"), dict):
        return "nst"
    if isinstance(data, dict):
        for name, markers in MARKERS.items():
            if all(key in data for key in markers):
                return name
    return None


def _count_residual(state: dict[str, torch.Tensor], layout: str) -> int:
    pattern = r"res(\d+)\.conv1\.conv2d\.weight" if layout == "fast_neural_style" else r"ResidualBlock\.(\d+)\.conv1\."
    return len({m.group(1) for key in state if (m := re.match(pattern, key))})


def convert_state_dict(state: dict[str, torch.Tensor], layout: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """(model_args, our state dict) for a fast_neural_style or seed state dict; NSTError names unmatched keys."""
    state = {k: v for k, v in state.items() if not _STALE.match(k)}
    num_residual = _count_residual(state, layout)
    names = (_fns_names if layout == "fast_neural_style" else _seed_names)(num_residual)
    base = state[MARKERS[layout][0]].shape[0]
    args = {"upsample": "nearest" if layout == "fast_neural_style" else "deconv", "base_channels": int(base),
            "num_residual": num_residual, "output": "clamp"}
    wanted = TransformerNet(**args).state_dict()
    out: dict[str, torch.Tensor] = {}
    used, missing = set(), []
    for ours, theirs in names.items():
        is_norm = f"{ours}.bias" in wanted and not ours.startswith("head.")
        for param in ("weight", "bias"):
            key = f"{theirs}.{param}"
            if key in state:
                used.add(key)  # a conv's bias before instance norm is used up: the norm cancels it
                if f"{ours}.{param}" in wanted:
                    out[f"{ours}.{param}"] = state[key].float()
            elif param == "weight" or is_norm or ours.startswith("head."):
                missing.append(key)
    unexpected = sorted(set(state) - used)
    shapes = [names[k.rpartition(".")[0]] for k, v in out.items() if v.shape != wanted[k].shape]
    if missing or unexpected or shapes:
        raise NSTError(
            f"the keys of this {layout} file do not match its layout: missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}, wrong shapes {shapes[:3]}; is it another architecture?"
        )
    out["encoder.0.1.weight"] = out["encoder.0.1.weight"] * _SCALE  # [0, 1] input, same activations as 0-255
    out["head.1.weight"] = out["head.1.weight"] / _SCALE  # 0-255 output -> [0, 1]
    out["head.1.bias"] = out["head.1.bias"] / _SCALE
    return args, out
