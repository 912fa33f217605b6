"""Which precision and engine run the network (nst.fastnet.infer.engines), on CPUs with and without native bf16.

oneDNN's probe is patched to say yes and no, so both selection paths run on any CPU (bf16 autocast still
computes on a CPU without native bf16, only slowly, and 30x45 px with 4 channels stays cheap). Only the
error of the real native bf16 kernels needs a CPU that has them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nst.errors import NSTError
from nst.fastnet.infer import engines
from nst.fastnet.infer.engines import TorchEngine, check_precision, make_engine, native_precisions
from nst.fastnet.transformer_net import TransformerNet

CPU = torch.device("cpu")
#: The documented promise of ``precision=auto``: within 1/255 of fp32 on average, i.e. one level of 0-255.
PROMISE_LEVELS = 255 * engines.PRECISION_TOLERANCE


@pytest.fixture(scope="module")
def net() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet(base_channels=4, num_residual=1).eval()


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (2, 30, 45, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def fp32_out(net: TransformerNet, frames: np.ndarray) -> np.ndarray:
    return TorchEngine(net, CPU, "fp32")(frames).astype(int)


def _native_bf16(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """Make oneDNN report native bf16 (AVX512-BF16/AMX) or its absence (AVX2), whatever this CPU has."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)


@pytest.mark.parametrize("native", [True, False], ids=["native-bf16", "avx2"])
def test_cpu_precisions_follow_onednn(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    _native_bf16(monkeypatch, native)
    assert native_precisions(CPU) == (["bf16"] if native else [])
    for name in ("auto", "fp32"):
        check_precision(name, CPU)
    if native:
        check_precision("bf16", CPU)
    else:
        with pytest.raises(NSTError, match="precision=bf16 is not native on this CPU"):
            check_precision("bf16", CPU)
    with pytest.raises(NSTError, match="precision=fp16 is not native on this CPU"):
        check_precision("fp16", CPU)
    with pytest.raises(NSTError, match="precision=fp8 is not one of"):
        check_precision("fp8", CPU)


@pytest.mark.parametrize("native", [True, False], ids=["native-bf16", "avx2"])
def test_auto_engine_on_a_cpu(monkeypatch: pytest.MonkeyPatch, net: TransformerNet, native: bool) -> None:
    """ONNX Runtime runs fp32 only: with native bf16 ``precision=auto`` keeps PyTorch, so that it can pick bf16."""
    _native_bf16(monkeypatch, native)
    assert make_engine(net, CPU, "auto", "auto").name == ("torch" if native else "onnxruntime")
    assert make_engine(net, CPU, "auto", "fp32").name == "onnxruntime"
    assert make_engine(net, CPU, "auto", "auto", frames=1).name == "torch"  # one image: no export
    if native:
        with pytest.raises(NSTError, match="engine=onnxruntime runs on the CPU in fp32"):
            make_engine(net, CPU, "onnxruntime", "auto")
    else:
        assert make_engine(net, CPU, "onnxruntime", "auto").precision == "fp32"


@pytest.mark.parametrize("native", [True, False], ids=["native-bf16", "avx2"])
def test_auto_settles_on_the_first_batch(monkeypatch: pytest.MonkeyPatch, net: TransformerNet, frames: np.ndarray,
                                         fp32_out: np.ndarray, native: bool) -> None:
    _native_bf16(monkeypatch, native)
    engine = TorchEngine(net, CPU, "auto")
    out = engine(frames).astype(int)
    assert engine.precision == ("bf16" if native else "fp32")
    difference = np.abs(out - fp32_out)
    if native:
        assert 0 < difference.mean() <= PROMISE_LEVELS  # bf16 did run, and kept the promise
    else:
        assert difference.max() == 0
    monkeypatch.setattr(engines, "PRECISION_TOLERANCE", 0.0)  # would now reject bf16, but the choice is made
    engine(frames[:1])
    assert engine.precision == ("bf16" if native else "fp32")


def test_auto_falls_back_to_fp32_beyond_the_tolerance(monkeypatch: pytest.MonkeyPatch, net: TransformerNet,
                                                       frames: np.ndarray, fp32_out: np.ndarray) -> None:
    _native_bf16(monkeypatch, True)
    monkeypatch.setattr(engines, "PRECISION_TOLERANCE", 0.0)  # any difference from fp32 is too much
    engine = TorchEngine(net, CPU, "auto")
    assert np.array_equal(engine(frames), fp32_out) and engine.precision == "fp32"


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(),
                    reason="measures oneDNN's native bf16 kernels, and oneDNN reports none on this CPU (AVX2 "
                           "only?); the choice of precision is tested above with the probe patched")
def test_native_bf16_keeps_the_promise_of_auto(net: TransformerNet, frames: np.ndarray,
                                               fp32_out: np.ndarray) -> None:
    engine = TorchEngine(net, CPU, "auto")
    difference = np.abs(engine(frames).astype(int) - fp32_out)
    assert engine.precision == "bf16"
    assert difference.mean() <= PROMISE_LEVELS
