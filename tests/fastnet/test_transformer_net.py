"""TransformerNet (Johnson 2016): shapes, Table II structure, the config, ONNX, gradients."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

import nst.fastnet.transformer_net as tn
from nst.errors import NSTError
from nst.fastnet.transformer_net import ResidualBlock, TransformerNet

CONF = Path(__file__).resolve().parents[2] / "conf" / "model" / "transformer_net.yaml"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _convs(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


@pytest.mark.parametrize("upsample", ["deconv", "nearest"])
@pytest.mark.parametrize("size", [(67, 45), (33, 17), (5, 3), (1, 2)])
def test_output_shape_matches_any_input_size(upsample: str, size: tuple[int, int]) -> None:
    net = TransformerNet(upsample, base_channels=8, num_residual=2)
    x = torch.rand(2, 3, *size)
    y = net(x)
    assert y.shape == x.shape
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


def test_padding_is_reflect_where_possible_and_replicate_otherwise() -> None:
    x = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 3, 5, 5)
    padded = tn._pad_bottom_right(x)
    assert padded.shape[-2:] == (8, 8)
    assert padded[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]  # reflected, not repeated
    tiny = tn._pad_bottom_right(torch.rand(1, 3, 1, 2))
    assert tiny.shape[-2:] == (8, 8)
    assert torch.equal(tiny[..., 0, :], tiny[..., 7, :])  # one row: replicated downwards
    assert tn._pad_bottom_right(torch.rand(1, 3, 64, 48)).shape[-2:] == (64, 48)  # already fine: untouched


@pytest.mark.parametrize("upsample", ["deconv", "nearest"])
def test_layer_structure_matches_table_ii(upsample: str) -> None:
    net = TransformerNet(upsample)
    convs = _convs(net)
    assert len(convs) == 3 + 2 * 5 + 2 + 1
    shapes = [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs]
    assert shapes[:3] == [(3, 32, 9, 1), (32, 64, 3, 2), (64, 128, 3, 2)]
    assert shapes[3:13] == [(128, 128, 3, 1)] * 10
    up_stride = 2 if upsample == "deconv" else 1
    assert shapes[13:] == [(128, 64, 3, up_stride), (64, 32, 3, up_stride), (32, 3, 9, 1)]
    assert all(isinstance(c, nn.ConvTranspose2d) == (upsample == "deconv") for c in convs[13:15])
    assert sum(isinstance(m, ResidualBlock) for m in net.modules()) == 5
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 15 and all(n.affine for n in norms)
    assert sum(isinstance(m, nn.Upsample) for m in net.modules()) == (2 if upsample == "nearest" else 0)

    leaves = [m for m in net.modules() if not list(m.children())]
    assert leaves[-1] is convs[-1]  # the last conv has no norm or ReLU after it
    for conv in convs[:-1]:
        i = leaves.index(conv)
        assert isinstance(leaves[i + 1], nn.InstanceNorm2d)
        if not isinstance(conv, nn.ConvTranspose2d):
            assert isinstance(leaves[i - 1], nn.ReflectionPad2d) and conv.padding == (0, 0)
    relus_after_norm = sum(isinstance(leaves[leaves.index(n) + 1], nn.ReLU) for n in norms if n is not leaves[-1])
    assert relus_after_norm == 15 - 5  # every norm but the second of each residual block


def test_residual_block_has_identity_skip() -> None:
    block = ResidualBlock(16)
    last_norm = block.body[-1]
    nn.init.zeros_(last_norm.weight)
    nn.init.zeros_(last_norm.bias)
    x = torch.randn(1, 16, 8, 8)
    assert torch.equal(block(x), x)


def test_unknown_upsample_names_allowed_values() -> None:
    with pytest.raises(NSTError, match="deconv, nearest"):
        TransformerNet("bilinear")


def test_model_args_rebuild_and_config() -> None:
    net = TransformerNet("nearest", base_channels=8, num_residual=2)
    assert net.model_args == {"upsample": "nearest", "base_channels": 8, "num_residual": 2}
    twin = TransformerNet(**net.model_args)
    twin.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 20, 20)
    assert torch.equal(net(x), twin(x))

    from hydra.utils import instantiate

    built = instantiate(OmegaConf.load(CONF).net)
    assert isinstance(built, TransformerNet)
    assert built.model_args == TransformerNet().model_args


def test_channels_last_and_bf16_autocast() -> None:
    net = TransformerNet("nearest", base_channels=8, num_residual=2).eval()
    x = torch.rand(2, 3, 30, 22)
    with torch.no_grad():
        ref = net(x)
        cl = net(x.to(memory_format=torch.channels_last))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = net(x)
    assert cl.shape == ref.shape and torch.allclose(cl, ref, atol=1e-5)
    assert half.shape == ref.shape and torch.isfinite(half).all()
    assert half.dtype == torch.float32, "the RGB head stays float32 under bf16 autocast"
    assert (half.float() - ref).abs().max() < 0.05


@pytest.mark.filterwarnings("ignore")  # the legacy exporter warns about tracing and its own deprecation
def test_onnx_export_matches_pytorch() -> None:
    ort = pytest.importorskip("onnxruntime")
    net = TransformerNet("nearest", base_channels=8, num_residual=2).eval()
    x = torch.rand(1, 3, 64, 48)
    buffer = io.BytesIO()
    # Legacy TorchScript exporter: the dynamo one needs onnxscript, which is not a dependency.
    torch.onnx.export(net, (x,), buffer, dynamo=False, input_names=["image"], output_names=["styled"])
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        ref = net(x).numpy()
    assert out.shape == ref.shape
    assert abs(out - ref).max() < 1e-4


@pytest.mark.parametrize("upsample", ["deconv", "nearest"])
def test_gradients_reach_every_parameter(upsample: str) -> None:
    net = TransformerNet(upsample, base_channels=8, num_residual=2)
    net(torch.rand(2, 3, 24, 20)).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
