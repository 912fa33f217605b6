"""ONNX and TorchScript exports (nst.fastnet.infer.portable): loaded back, they match PyTorch at sizes other than
the example's, odd ones included; the ONNX file runs in onnxruntime with dynamic batch, height and width. A
multi-style network exports with a second input, the style weights, and its style names in the file."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from nst.errors import NSTError
from nst.fastnet.infer.engines import OrtEngine, TorchEngine
from nst.fastnet.infer.portable import TOLERANCE, check_torchscript, export_model
from nst.fastnet.transformer_net import CondInstanceNorm2d, TransformerNet


@pytest.fixture(scope="module")
def net() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet("nearest", base_channels=4, num_residual=1).eval()


STYLES = ["udnie", "great_wave", "starry_night"]


@pytest.fixture(scope="module")
def multi() -> TransformerNet:
    """Three styles, each norm's rows distinct (as training leaves them: fresh rows are all equal)."""
    torch.manual_seed(0)
    net = TransformerNet("nearest", base_channels=4, num_residual=1, styles=STYLES)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, CondInstanceNorm2d):
                module.weight.normal_(1.0, 0.5)
                module.bias.normal_(0.0, 0.5)
    return net.eval()


def _style_rows() -> list[torch.Tensor]:
    """Per-image style weights for a batch of 3: each style once, and blends whose rows do not sum to 1."""
    return [torch.eye(3), torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 6.0], [0.2, 0.3, 0.5]])]


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


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_multi_style_torchscript_takes_the_style_weights_and_keeps_the_names(tmp_path: Path,
                                                                             multi: TransformerNet) -> None:
    path, difference = export_model(multi, tmp_path / "multi.pt", "torchscript")
    assert difference is not None and difference <= TOLERANCE
    files = {"styles.json": ""}
    loaded = torch.jit.load(str(path), _extra_files=files)
    assert json.loads(files["styles.json"]) == STYLES
    x = torch.rand(1, 3, 41, 23).expand(3, -1, -1, -1)  # one picture in each style: the rows must matter
    with torch.no_grad():
        for style in _style_rows():
            torch.testing.assert_close(loaded(x, style), multi(x, style), atol=1e-5, rtol=0)
        one_hot = loaded(x, torch.eye(3))
        assert (one_hot[0] - one_hot[1]).abs().mean() > 1e-3 and (one_hot[1] - one_hot[2]).abs().mean() > 1e-3


def test_multi_style_onnx_has_two_inputs_and_the_names_in_its_metadata(tmp_path: Path,
                                                                       multi: TransformerNet) -> None:
    onnx = pytest.importorskip("onnx", reason="the graph and metadata are read with the onnx package")
    path, difference = export_model(multi, tmp_path / "multi.onnx", "onnx")
    assert difference is not None and difference <= TOLERANCE
    model = onnx.load(str(path))
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert inputs == {"image": ["batch", 3, "height", "width"], "style": ["batch", 3]}
    assert {p.key: json.loads(p.value) for p in model.metadata_props} == {"styles": STYLES}
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert json.loads(session.get_modelmeta().custom_metadata_map["styles"]) == STYLES
    x = torch.rand(3, 3, 29, 50)
    with torch.no_grad():
        for style in _style_rows():
            y = session.run(None, {"image": x.numpy(), "style": style.numpy()})[0]
            assert np.abs(y - multi(x, style).numpy()).max() < 1e-5


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_the_export_check_covers_every_style(tmp_path: Path, multi: TransformerNet) -> None:
    path, _ = export_model(multi, tmp_path / "multi.pt", "torchscript")
    other = copy.deepcopy(multi)  # the same network but for its last style, which a check of the first two misses
    with torch.no_grad():
        for module in other.modules():
            if isinstance(module, CondInstanceNorm2d):
                module.bias[2] += 0.5
    with pytest.raises(NSTError, match="differs from PyTorch"):
        check_torchscript(path, other)
