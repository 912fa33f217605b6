"""ONNX and TorchScript exports (nst.fastnet.infer.portable): loaded back, they match PyTorch at sizes other than
the example's, odd ones included; the ONNX file runs in onnxruntime with dynamic batch, height and width."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from nst.errors import NSTError
from nst.fastnet.infer.engines import OrtEngine, TorchEngine
from nst.fastnet.infer.portable import TOLERANCE, export_model
from nst.fastnet.transformer_net import TransformerNet


@pytest.fixture(scope="module")
def net() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet("nearest", base_channels=4, num_residual=1).eval()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.load's deprecation notice
def test_torchscript_loads_back_and_matches(tmp_path: Path, net: TransformerNet) -> None:
    path, difference = export_model(net, tmp_path / "net.pt", "torchscript")
    assert difference is not None and difference <= TOLERANCE
    loaded = torch.jit.load(str(path))
    x = torch.rand(3, 3, 41, 23)  # a size the export never saw
    with torch.no_grad():
        assert (loaded(x) - net(x)).abs().max() < 1e-5


def test_onnx_runs_in_onnxruntime_at_any_size(tmp_path: Path, net: TransformerNet) -> None:
    path, difference = export_model(net, tmp_path / "net.onnx", "onnx")
    assert difference is not None and difference <= TOLERANCE
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]  # no temporary file left
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 97, 53), (2, 3, 8, 9)]:
        x = torch.rand(*shape)
        y = session.run(None, {"image": x.numpy()})[0]
        assert y.shape == shape
        with torch.no_grad():
            assert np.abs(y - net(x).numpy()).max() < 1e-5


def test_engines_agree_on_uint8_frames(net: TransformerNet) -> None:
    # fp32 on both sides: precision=auto may pick bf16 on a CPU with native bf16 (tests/fastnet/test_engines.py)
    frames = np.random.default_rng(0).integers(0, 256, (2, 30, 45, 3), dtype=np.uint8)
    torch_out = TorchEngine(net, torch.device("cpu"), "fp32")(frames)
    ort_out = OrtEngine(net)(frames)
    assert torch_out.shape == frames.shape and torch_out.dtype == np.uint8
    assert np.abs(torch_out.astype(int) - ort_out).max() <= 1


def test_export_errors_are_one_line(tmp_path: Path, net: TransformerNet) -> None:
    with pytest.raises(NSTError, match="export=onnx or export=torchscript"):
        export_model(net, tmp_path / "x.bin", "tflite")
    (tmp_path / "file").write_text("")
    with pytest.raises(NSTError, match="cannot write"):
        export_model(net, tmp_path / "file" / "net.onnx", "onnx")
