"""Export a :class:`TransformerNet` to TorchScript and to ONNX (dynamic batch, height and width), checked on reload.

Both go through :class:`PortableNet`, a scripted copy of the network's forward whose padding is computed from
the input's shape at run time (a traced forward would freeze the padding of the example's size). The exported
files take (B, 3, H, W) float32 RGB in [0, 1] with H, W >= 8 and return the same, like the network itself.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nst.errors import NSTError
from nst.fastnet.transformer_net import MIN_PADDED_SIDE, MULTIPLE, TransformerNet
from nst.io.files import atomic_path

EXPORT_FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17
#: Largest mean absolute difference (of [0, 1] outputs) an exported file may show against PyTorch.
TOLERANCE = 1e-4
#: Sizes the check runs: odd and even, batch 1 and 2, none a multiple of 4 but the first.
_CHECK_SHAPES = ((1, 3, 32, 48), (2, 3, 37, 29))


class PortableNet(nn.Module):
    """The forward of a :class:`TransformerNet` in a form that TorchScript and ONNX keep dynamic in H and W.

    Shares the network's layers (no copy). Reflection-pads bottom/right to a multiple of 4 (at least 8), as the
    network does, so the outputs match for inputs of 8 px and more.
    """

    def __init__(self, net: TransformerNet) -> None:
        super().__init__()
        net = getattr(net, "_orig_mod", net)
        self.encoder, self.residuals, self.decoder, self.head = net.encoder, net.residuals, net.decoder, net.head
        self.sigmoid = net.output == "sigmoid"
        self.multiple, self.min_side = MULTIPLE, MIN_PADDED_SIDE  # attributes: TorchScript reads no globals

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        m = self.multiple
        ph = max(self.min_side, (h + m - 1) // m * m) - h
        pw = max(self.min_side, (w + m - 1) // m * m) - w
        y = F.pad(x, [0, pw, 0, ph], mode="reflect")
        y = self.head(self.decoder(self.residuals(self.encoder(y))))[:, :, :h, :w]
        return torch.sigmoid(y) if self.sigmoid else y.clamp(0, 1)


def script(net: TransformerNet) -> torch.jit.ScriptModule:
    """The network as a TorchScript module (float32, CPU, eval mode)."""
    net = getattr(net, "_orig_mod", net)
    portable = PortableNet(net).float().cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice: it is still what C++/mobile load
        return torch.jit.script(portable)


def onnx_bytes(net: TransformerNet, opset: int = ONNX_OPSET) -> bytes:
    """The network as an ONNX model (input ``image``, output ``stylized``; batch, height, width dynamic)."""
    buffer = io.BytesIO()
    dims = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            script(net), (torch.rand(*_CHECK_SHAPES[0]),), buffer, dynamo=False, opset_version=opset,
            input_names=["image"], output_names=["stylized"], dynamic_axes={"image": dims, "stylized": dims},
        )
    return buffer.getvalue()


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
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # jit.save is deprecated, TorchScript still loads
                    torch.jit.save(script(net), str(tmp))
                difference = check_torchscript(tmp, net)
    except OSError as exc:
        raise NSTError(f"cannot write {path}: {exc}; choose a writable output folder") from exc
    return path, difference


def _difference(run, net: nn.Module) -> float:
    """The largest, over :data:`_CHECK_SHAPES`, mean absolute difference between ``run(x)`` and ``net(x)``."""
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for shape in _CHECK_SHAPES:
            x = torch.rand(*shape, generator=generator)
            worst = max(worst, float((torch.as_tensor(run(x)) - net(x)).abs().mean()))
    if not worst <= TOLERANCE:
        raise NSTError(f"the exported model differs from PyTorch by {worst:.2e} on average (> {TOLERANCE:g})")
    return worst


def check_torchscript(path: str | os.PathLike, net: nn.Module) -> float:
    """Load a TorchScript file back and compare it with ``net`` (see :func:`_difference`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        loaded = torch.jit.load(str(path), map_location="cpu")
    return _difference(loaded, net)


def check_onnx(path: str | os.PathLike, net: nn.Module) -> float | None:
    """Run an ONNX file with onnxruntime at two sizes and compare it with ``net``; None without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _difference(lambda x: session.run(None, {"image": x.numpy()})[0], net)
