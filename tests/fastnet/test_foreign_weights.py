"""Weights from elsewhere (nst.fastnet.foreign_weights, loaded by nst.fastnet.weights.load_weights): each layout is
detected and maps exactly onto TransformerNet."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nst.errors import NSTError
from nst.fastnet.foreign_weights import convert_state_dict, detect_format
from nst.fastnet.infer.engines import TorchEngine
from nst.fastnet.infer.jobs import InferSettings, plan_jobs, run_jobs
from nst.fastnet.transformer_net import TransformerNet
from nst.fastnet.weights import export_weights, load_weights
from nst.io.image import load_image
from tests.fastnet.foreign import foreign_forward, foreign_state
from tests.helpers import make_image


@pytest.mark.parametrize("layout", ["fast_neural_style", "seed"])
def test_foreign_layouts_match_their_own_forward(tmp_path: Path, layout: str) -> None:
    state = foreign_state(layout, base=4, num_residual=2)
    assert detect_format(state) == layout
    path = tmp_path / f"{layout}.pth"
    torch.save(state, path)
    net = load_weights(path)
    assert net.model_args["output"] == "clamp"
    assert net.model_args["upsample"] == ("nearest" if layout == "fast_neural_style" else "deconv")
    x = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = foreign_forward(state, layout, x * 255).clamp(0, 255) / 255
        ours = net(x)
    assert 0.05 < float((theirs > 0).float().mean()) and float(theirs.std()) > 0.01  # not a flat image
    assert (ours - theirs).abs().max() < 1e-4


def test_our_export_and_a_wrapped_foreign_dict_load(tmp_path: Path) -> None:
    net = TransformerNet(base_channels=4, num_residual=1).eval()
    x = torch.rand(1, 3, 20, 24)
    assert torch.equal(load_weights(export_weights(net, tmp_path / "ours.pt"))(x), net(x))
    torch.save({"state_dict": foreign_state("seed")}, tmp_path / "wrapped.pth")
    assert load_weights(tmp_path / "wrapped.pth").model_args["upsample"] == "deconv"


def test_a_clamp_network_round_trips_through_our_export(tmp_path: Path) -> None:
    args, state = convert_state_dict(foreign_state("fast_neural_style"), "fast_neural_style")
    net = TransformerNet(**args).eval()
    net.load_state_dict(state)
    loaded = load_weights(export_weights(net, tmp_path / "fns.pt"))
    x = torch.rand(1, 3, 16, 16)
    assert loaded.model_args == args and torch.equal(loaded(x), net(x))


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: {"fc.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)}, "another architecture"),
        (lambda: {k: v for k, v in foreign_state("fast_neural_style").items() if k != "in5.bias"},
         "missing ['in5.bias']"),
        (lambda: {**foreign_state("seed"), "extra.weight": torch.zeros(1)}, "unexpected ['extra.weight']"),
    ],
)
def test_wrong_weights_are_one_line_naming_the_keys(tmp_path: Path, make, words: str) -> None:
    path = tmp_path / "w.pth"
    torch.save(make(), path)
    with pytest.raises(NSTError) as info:
        load_weights(path)
    message = str(info.value)
    assert "\n" not in message and words in message and str(path) in message


def test_corrupt_file_and_lightning_checkpoint_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.pt").write_bytes(b"\x00garbage" * 20)
    with pytest.raises(NSTError, match="cannot read"):
        load_weights(tmp_path / "bad.pt")
    net = TransformerNet(base_channels=4, num_residual=1)
    torch.save({"state_dict": {"net." + k: v for k, v in net.state_dict().items()},
                "pytorch-lightning_version": "2.6"}, tmp_path / "last.ckpt")
    with pytest.raises(NSTError, match="Lightning"):
        load_weights(tmp_path / "last.ckpt")


@pytest.mark.parametrize("layout", ["nst", "fast_neural_style", "seed"])
def test_each_format_stylizes_an_image_file(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "w.pth"
    if layout == "nst":
        export_weights(TransformerNet(base_channels=4, num_residual=1), path)
    else:
        torch.save(foreign_state(layout), path)
    make_image(tmp_path / "photo.png", size=(30, 20))
    engine = TorchEngine(load_weights(path), torch.device("cpu"), "fp32")
    jobs = plan_jobs(tmp_path / "photo.png", tmp_path / "out")
    run_jobs(engine, jobs, InferSettings())
    styled = load_image(tmp_path / "out" / "photo.png", min_side=None)
    assert styled.shape == (1, 3, 20, 30) and float(styled.std()) > 0.01
