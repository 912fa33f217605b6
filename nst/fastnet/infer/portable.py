"""Export a :class:`TransformerNet` to TorchScript and to ONNX (dynamic batch, height and width), checked on reload.

Both go through the scripted forms of :mod:`nst.fastnet.infer.portable_net`. The exported files take ``image``,
(B, 3, H, W) float32 RGB in [0, 1] with H, W >= 8, and return ``stylized``, the same, like the network itself. A
multi-style network (conditional instance norm, Dumoulin et al. 2017) exports every style: a second input
``style``, (B, num_styles) float32 weights (a one-hot pick or a blend), and the style names in the file (ONNX:
metadata ``styles``; TorchScript: the extra file ``styles.json``; a JSON list in both).
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from nst.errors import NSTError
from nst.fastnet.infer.portable_net import PortableNet, PortableStyleNet
from nst.fastnet.transformer_net import TransformerNet
from nst.io.files import atomic_path

EXPORT_FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17
#: Largest mean absolute difference (of [0, 1] outputs) an exported file may show against PyTorch.
TOLERANCE = 1e-4
#: Sizes the check runs: odd and even, batch 1 and 2, none a multiple of 4 but the first.
_CHECK_SHAPES = ((1, 3, 32, 48), (2, 3, 37, 29))
#: Where the style names of a multi-style export are kept: the ONNX metadata key, the TorchScript extra file.
STYLES_KEY, STYLES_FILE = "styles", "styles.json"


def script(net: TransformerNet) -> torch.jit.ScriptModule:
    """The network as a TorchScript module (float32, CPU, eval mode); ``forward(image, style)`` for a multi-style
    network, ``forward(image)`` otherwise."""
    net = getattr(net, "_orig_mod", net)
    portable = (PortableStyleNet(net) if net.num_styles > 1 else PortableNet(net)).float().cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice: it is still what C++/mobile load
        return torch.jit.script(portable)


def onnx_bytes(net: TransformerNet, opset: int = ONNX_OPSET) -> bytes:
    """The network as an ONNX model (input ``image``, and ``style`` for a multi-style network, whose names go in
    the metadata; output ``stylized``; batch, height, width dynamic)."""
    net = getattr(net, "_orig_mod", net)
    buffer = io.BytesIO()
    dims = {0: "batch", 2: "height", 3: "width"}
    example, names, axes = [torch.rand(*_CHECK_SHAPES[0])], ["image"], {"image": dims, "stylized": dims}
    if net.num_styles > 1:
        example.append(torch.eye(net.num_styles)[:1])
        names.append("style")
        axes["style"] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            script(net), tuple(example), buffer, dynamo=False, opset_version=opset,
            input_names=names, output_names=["stylized"], dynamic_axes=axes,
        )
    if net.num_styles == 1:
        return buffer.getvalue()
    import onnx  # torch.onnx.export needs it too

    model = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(model, {STYLES_KEY: json.dumps(net.styles)})
    return model.SerializeToString()


def describe_inputs(net: TransformerNet) -> str:
    """The inputs of the exported ``net``, in words for the line printed after an export."""
    if net.num_styles == 1:
        return "input image (B,3,H,W)"
    return f"inputs image (B,3,H,W) and style (B,{net.num_styles}) over [{', '.join(net.styles)}]"


def export_model(net: TransformerNet, path: str | os.PathLike, fmt: str) -> tuple[Path, float | None]:
    """Write ``net`` as ``fmt`` (onnx | torchscript) atomically, load it back, and compare it with PyTorch.

    Returns the path and the largest mean absolute difference found (None for ONNX without onnxruntime);
    a difference above :data:`TOLERANCE` is an error and leaves no file.
    """
    if fmt not in EXPORT_FORMATS:
        raise NSTError(f"export={fmt} is not a format; use export=onnx or export=torchscript")
    path = Path(path)
    net = getattr(net, "_orig_mod", net).float().cpu().eval()
    try:
        with atomic_path(path) as tmp:
            if fmt == "onnx":
                tmp.write_bytes(onnx_bytes(net))
                difference = check_onnx(tmp, net)
            else:
                extra = {STYLES_FILE: json.dumps(net.styles)} if net.num_styles > 1 else {}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # jit.save is deprecated, TorchScript still loads
                    torch.jit.save(script(net), str(tmp), _extra_files=extra)
                difference = check_torchscript(tmp, net)
    except OSError as exc:
        raise NSTError(f"cannot write {path}: {exc}; choose a writable output folder") from exc
    return path, difference


def _check_inputs(net: TransformerNet) -> Iterator[tuple[torch.Tensor, ...]]:
    """What an export is checked on: an image of each of :data:`_CHECK_SHAPES`; for a multi-style network with
    each style as a one-hot row (per image in turn) and with a blend of weights that do not sum to 1."""
    generator = torch.Generator().manual_seed(0)
    n = net.num_styles
    for shape in _CHECK_SHAPES:
        x = torch.rand(*shape, generator=generator)
        if n == 1:
            yield (x,)
            continue
        rows = torch.arange(shape[0])
        for k in range(n):
            yield x, torch.eye(n)[(rows + k) % n]
        yield x, 0.1 + 3 * torch.rand(shape[0], n, generator=generator)


def _difference(run: Callable[..., object], net: TransformerNet) -> float:
    """The largest, over :func:`_check_inputs`, mean absolute difference between ``run(*inputs)`` and
    ``net(*inputs)``."""
    worst = 0.0
    with torch.inference_mode():
        for inputs in _check_inputs(net):
            worst = max(worst, float((torch.as_tensor(run(*inputs)) - net(*inputs)).abs().mean()))
    if not worst <= TOLERANCE:
        raise NSTError(f"the exported model differs from PyTorch by {worst:.2e} on average (> {TOLERANCE:g})")
    return worst


def check_torchscript(path: str | os.PathLike, net: TransformerNet) -> float:
    """Load a TorchScript file back and compare it with ``net`` (see :func:`_difference`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        loaded = torch.jit.load(str(path), map_location="cpu")
    return _difference(loaded, net)


def check_onnx(path: str | os.PathLike, net: TransformerNet) -> float | None:
    """Run an ONNX file with onnxruntime and compare it with ``net`` (see :func:`_difference`); None without
    onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return _difference(lambda *inputs: session.run(None, {k: v.numpy() for k, v in zip(names, inputs)})[0], net)
