"""What runs the network on frames: PyTorch (any device, autocast precision, compile) or ONNX Runtime (CPU).

An engine maps a uint8 batch (B, H, W, 3) RGB to a uint8 batch of the same shape, so the video pipeline hands
it decoded frames and gets encodable ones back; the [0, 1] float conversion happens on the engine's device
(on a GPU the uint8 frames cross the bus: a quarter of the bytes of float32).

Precision (``auto``): fp32, unless a lower one is native on the device and keeps the output within 1/255 of
fp32 on average, checked on the first batch. On a CPU that is bf16 where oneDNN reports bf16 support (x86 with
AVX-512, ARM with bf16), never otherwise; on CUDA fp16 is tried first (10-bit mantissa), then bf16.
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np
import torch

from nst.errors import NSTError
from nst.fastnet.transformer_net import TransformerNet

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ENGINES = ("auto", "torch", "onnxruntime")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: A lower precision is chosen automatically only if its output stays this close to fp32 (mean |difference|).
PRECISION_TOLERANCE = 1.0 / 255.0


class FrameEngine(Protocol):
    """Maps uint8 (B, H, W, 3) RGB frames to stylized uint8 frames of the same shape."""

    name: str

    def __call__(self, frames: np.ndarray | torch.Tensor) -> np.ndarray: ...


def native_precisions(device: torch.device) -> list[str]:
    """Lower precisions worth trying on ``device``, best first: the ones it computes natively."""
    if device.type == "cuda":
        return ["fp16", "bf16"] if torch.cuda.is_bf16_supported() else ["fp16"]
    return ["bf16"] if torch.ops.mkldnn._is_mkldnn_bf16_supported() else []


def check_precision(name: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run natively (bf16 emulated on a CPU is slower, not faster)."""
    if name not in PRECISIONS:
        raise NSTError(f"precision={name} is not one of {', '.join(PRECISIONS)}")
    native = native_precisions(device)
    if name in ("bf16", "fp16") and name not in native:
        raise NSTError(
            f"precision={name} is not native on this {device.type.upper()} (native: {', '.join(['fp32', *native])}); "
            "use precision=auto or fp32"
        )


class TorchEngine:
    """PyTorch under ``inference_mode`` and autocast; channels_last on CUDA; optional ``torch.compile``.

    ``precision="auto"`` settles on the first call (see the module docstring). With ``compile`` the batches are
    padded to one batch size, so the compiled graph is not rebuilt for a shorter last batch.
    """

    def __init__(self, net: TransformerNet, device: torch.device, precision: str = "auto", compile: bool = False,
                 batch_size: int = 1) -> None:
        check_precision(precision, device)
        self.device, self.precision, self.batch_size = device, precision, batch_size
        self.net = net.to(device).eval()
        self.channels_last = device.type == "cuda"  # measured slower than NCHW in eager mode on a CPU
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.model = torch.compile(self.net) if compile else self.net
        self.compile = compile
        self.name = "torch"

    def _forward(self, x: torch.Tensor, precision: str) -> torch.Tensor:
        dtype = _DTYPES[precision]
        with torch.autocast(self.device.type, dtype=dtype, enabled=precision != "fp32"):
            return self.model(x).float()

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        batch = torch.from_numpy(frames) if isinstance(frames, np.ndarray) else frames
        count = batch.shape[0]
        if self.compile and count < self.batch_size:
            batch = torch.cat([batch, batch[-1:].expand(self.batch_size - count, *batch.shape[1:])])
        x = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        x = x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        if self.precision == "auto":
            self.precision = self._choose(x)
        y = self._forward(x, self.precision)[:count]
        out = y.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return out.cpu().numpy()

    def _choose(self, x: torch.Tensor) -> str:
        reference = self._forward(x, "fp32")
        for candidate in native_precisions(self.device):
            if float((self._forward(x, candidate) - reference).abs().mean()) <= PRECISION_TOLERANCE:
                return candidate
        return "fp32"


class OrtEngine:
    """The network exported to ONNX (in memory) and run by ONNX Runtime on the CPU, on all cores.

    About 2x faster than PyTorch's eager forward on the 2-core development CPU (bench/infer_speed.py).
    """

    def __init__(self, net: TransformerNet) -> None:
        import onnxruntime

        from nst.fastnet.infer.portable import onnx_bytes

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads() or os.cpu_count() or 1
        self.session = onnxruntime.InferenceSession(onnx_bytes(net), options, providers=["CPUExecutionProvider"])
        self.precision, self.name = "fp32", "onnxruntime"

    def __call__(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        batch = frames.numpy() if isinstance(frames, torch.Tensor) else frames
        x = batch.transpose(0, 3, 1, 2).astype(np.float32)
        x /= 255.0
        y = self.session.run(None, {"image": x})[0]
        return np.ascontiguousarray((np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1))


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def make_engine(net: TransformerNet, device: torch.device, engine: str = "auto", precision: str = "auto",
                compile: bool = False, batch_size: int = 1, frames: int | None = None) -> FrameEngine:
    """The engine for a job of about ``frames`` frames (None: unknown, many).

    ``auto``: ONNX Runtime on a CPU when it is installed, the precision is fp32 and the job has more than a
    few frames (the export takes seconds); PyTorch otherwise.
    """
    if engine not in ENGINES:
        raise NSTError(f"engine={engine} is not one of {', '.join(ENGINES)}")
    check_precision(precision, device)
    cpu_fp32 = device.type == "cpu" and (precision == "fp32" or not native_precisions(device))
    if engine == "onnxruntime":
        if device.type != "cpu" or not cpu_fp32 or compile:
            raise NSTError("engine=onnxruntime runs on the CPU in fp32 without compile; use engine=torch or auto")
        if not onnxruntime_available():
            raise NSTError("engine=onnxruntime needs the onnxruntime package: pip install onnxruntime")
    many = frames is None or frames > 4
    if engine == "onnxruntime" or (engine == "auto" and cpu_fp32 and not compile and many and onnxruntime_available()):
        return OrtEngine(net)
    return TorchEngine(net, device, precision, compile, batch_size)

