"""VGG-19 and VGG-16 features: layer names, early stop, weights loading, frozen behaviour."""

from __future__ import annotations

from urllib.error import URLError

import pytest
import torch
from torchvision.models import VGG16_Weights, vgg16, vgg19

from nst.encoders.layers import LAYER_INDICES, LAYER_INDICES_BY_ARCH, layer_index
from nst.encoders.vgg import VGGFeatures, encoder_spec
from nst.errors import NSTError


@pytest.fixture(scope="module")
def random_vgg_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    return vgg19(weights=None).state_dict()


def test_layer_names_map_to_torchvision_indices() -> None:
    features = vgg19(weights=None).features
    expected = {"relu1_1": 1, "relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_2": 22, "relu4_3": 24, "relu5_4": 35}
    for name, index in expected.items():
        assert LAYER_INDICES[name] == index
        assert isinstance(features[index], torch.nn.ReLU)
    for block, first in enumerate((0, 5, 10, 19, 28), start=1):
        assert LAYER_INDICES[f"conv{block}_1"] == first
        assert isinstance(features[first], torch.nn.Conv2d)
        # Keras names include the ReLU: blockN_convM is the post-ReLU output.
        assert LAYER_INDICES[f"block{block}_conv1"] == first + 1
        assert isinstance(features[LAYER_INDICES[f"block{block}_pool"]], torch.nn.MaxPool2d)
    assert LAYER_INDICES["block4_conv2"] == LAYER_INDICES["relu4_2"]
    assert LAYER_INDICES["block5_pool"] == len(features) - 1


def test_keras_and_relu_names_give_the_same_tensor() -> None:
    vgg = VGGFeatures(["block4_conv2", "relu4_2", "conv4_2"], weights="random")
    out = vgg(torch.rand(1, 3, 48, 40))
    assert torch.equal(out["block4_conv2"], out["relu4_2"])
    assert torch.equal(out["relu4_2"], out["conv4_2"].clamp_min(0))
    assert (out["conv4_2"] < 0).any(), "pre-ReLU output must not be clobbered by an in-place ReLU"


def test_extractor_stops_after_the_deepest_layer() -> None:
    vgg = VGGFeatures(["relu1_2", "relu3_3"], weights="random")
    assert len(vgg.features) == LAYER_INDICES["relu3_3"] + 1
    calls: list[int] = []
    for i, module in enumerate(vgg.features):
        module.register_forward_hook(lambda *_, i=i: calls.append(i))
    out = vgg(torch.rand(1, 3, 32, 32), layers=["relu1_2"])
    assert set(out) == {"relu1_2"}
    assert max(calls) == LAYER_INDICES["relu1_2"]


def test_unknown_layer_is_a_clear_error() -> None:
    with pytest.raises(NSTError, match="unknown VGG-19 layer 'relu9_9'"):
        VGGFeatures(["relu9_9"], weights="random")


@pytest.mark.parametrize("full_model", [True, False], ids=["full-model", "features-only"])
def test_local_state_dict_matches_torchvision(tmp_path, random_vgg_state, full_model: bool) -> None:
    path = tmp_path / "vgg19.pth"
    state = random_vgg_state if full_model else {
        k.removeprefix("features."): v for k, v in random_vgg_state.items() if k.startswith("features.")
    }
    torch.save(state, path)
    ours = VGGFeatures(["relu2_2", "block4_conv2"], weights=str(path))
    reference = vgg19(weights=None)
    reference.load_state_dict(random_vgg_state)
    reference.eval()
    image = torch.rand(2, 3, 64, 48)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference.features[:23]((image - mean) / std)
        got = ours(image)
    torch.testing.assert_close(got["block4_conv2"], expected)


def test_bad_weights_files(tmp_path) -> None:
    with pytest.raises(NSTError, match="no such file"):
        VGGFeatures(["relu1_1"], weights=str(tmp_path / "missing.pth"))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(NSTError, match="cannot read"):
        VGGFeatures(["relu1_1"], weights=str(garbage))
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(3)}, wrong)
    with pytest.raises(NSTError, match="not a VGG-19 state dict"):
        VGGFeatures(["relu1_1"], weights=str(wrong))


def test_failed_download_names_the_offline_options(monkeypatch) -> None:
    def unreachable(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", unreachable)
    with pytest.raises(NSTError) as info:
        VGGFeatures(["relu1_1"], weights="imagenet")
    message = str(info.value)
    assert "could not download" in message
    assert "vgg.weights=/path/to/vgg19.pth" in message and "vgg.weights=random" in message
    assert "vgg=hed16" in message
    assert "\n" not in message


def test_random_weights_are_seeded() -> None:
    a = VGGFeatures(["relu1_1"], weights="random", seed=1)
    b = VGGFeatures(["relu1_1"], weights="random", seed=1)
    c = VGGFeatures(["relu1_1"], weights="random", seed=2)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)


def test_random_weights_warning_is_printed(monkeypatch) -> None:
    import nst.encoders.vgg

    monkeypatch.setattr(nst.encoders.vgg, "_RANDOM_WARNED", False)
    with pytest.warns(UserWarning, match="will not look like paintings"):
        VGGFeatures(["relu1_1"], weights="random")


def test_frozen_eval_and_gradients_reach_the_input_only() -> None:
    vgg = VGGFeatures(["relu2_1"], weights="random")
    vgg.train()
    assert not vgg.training
    assert all(not p.requires_grad for p in vgg.parameters())
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    vgg(image)["relu2_1"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_avg_pooling_and_channels_last() -> None:
    vgg = VGGFeatures(["relu3_1"], weights="random", pooling="avg")
    assert any(isinstance(m, torch.nn.AvgPool2d) for m in vgg.features)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in vgg.features)
    image = torch.rand(1, 3, 40, 40)
    torch.testing.assert_close(
        vgg(image.contiguous(memory_format=torch.channels_last))["relu3_1"], vgg(image)["relu3_1"]
    )
    with pytest.raises(NSTError, match="pooling"):
        VGGFeatures(["relu1_1"], weights="random", pooling="min")



# --- VGG-16 -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torchvision_vgg16_features() -> torch.nn.Sequential:
    torch.manual_seed(7)
    return vgg16(weights=None).features


def test_vgg16_layer_names_map_to_torchvision_indices(torchvision_vgg16_features) -> None:
    features = torchvision_vgg16_features
    indices = LAYER_INDICES_BY_ARCH["vgg16"]
    expected = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29, "conv4_2": 19, "pool4": 23}
    for name, index in expected.items():
        assert indices[name] == index
        assert layer_index(name, "vgg16") == index
    for block, first in enumerate((0, 5, 10, 17, 24), start=1):
        assert indices[f"conv{block}_1"] == first
        assert isinstance(features[first], torch.nn.Conv2d)
        assert indices[f"block{block}_conv1"] == indices[f"relu{block}_1"] == first + 1
        assert isinstance(features[first + 1], torch.nn.ReLU)
        assert isinstance(features[indices[f"block{block}_pool"]], torch.nn.MaxPool2d)
        assert indices[f"pool{block}"] == indices[f"block{block}_pool"]
    assert indices["block5_pool"] == len(features) - 1
    assert indices["block5_conv3"] == indices["relu5_3"]
    # 13 convolutions (+ ReLU) and 5 pools, each with a Keras and a PyTorch name, plus the pre-ReLU conv names
    assert len(indices) == 13 * 3 + 5 * 2
    assert LAYER_INDICES["relu4_3"] == 24 and indices["relu4_3"] == 22  # VGG-19's differ from VGG-16's


def test_vgg16_unknown_layer_lists_the_valid_names_in_one_line() -> None:
    with pytest.raises(NSTError) as info:
        VGGFeatures(["relu2_2", "block3_conv4"], weights="random", arch="vgg16")
    message = str(info.value)
    assert message.startswith("unknown VGG-16 layer 'block3_conv4'")
    assert "block3_conv3" in message and "block5_pool" in message and "relu" in message
    assert "block3_conv4" not in message.split(";", 1)[1]
    assert "\n" not in message
    with pytest.raises(NSTError, match="unknown VGG-16 layer 'relu5_4'"):
        VGGFeatures(["relu5_4"], weights="random", arch="vgg16")
    with pytest.raises(NSTError, match="vgg.arch must be one of vgg16, vgg19"):
        VGGFeatures(["relu1_1"], weights="random", arch="vgg11")


def test_vgg16_local_state_dict_matches_torchvision(tmp_path, torchvision_vgg16_features) -> None:
    path = tmp_path / "vgg16.pth"
    torch.save(torchvision_vgg16_features.state_dict(), path)
    ours = VGGFeatures(["block4_conv3", "conv5_1"], weights=str(path), arch="vgg16")
    assert len(ours.features) == 25 and ours.device == torch.device("cpu")
    image = torch.rand(1, 3, 48, 40)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = torchvision_vgg16_features[:23]((image - mean) / std)
        got = ours(image)["block4_conv3"]
    torch.testing.assert_close(got, expected)
    with pytest.raises(NSTError, match="not a VGG-19 state dict"):
        VGGFeatures(["relu1_1"], weights=str(path), arch="vgg19")


def test_hed_weights_need_vgg16_and_imagenet_hints_name_hed16(monkeypatch) -> None:
    with pytest.raises(NSTError, match=r"not a VGG-19; set vgg.arch=vgg16 as well \(vgg=hed16 sets both\)"):
        VGGFeatures(["relu1_1"], weights="hed", arch="vgg19")

    def unreachable(url, *args, **kwargs):
        raise URLError(f"[Errno -3] Temporary failure in name resolution: {url}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", unreachable)
    with pytest.raises(NSTError) as info:
        VGGFeatures(["relu1_1"], weights="imagenet", arch="vgg16")
    message = str(info.value)
    assert "VGG-16 ImageNet weights" in message and VGG16_Weights.IMAGENET1K_V1.url in message
    assert "vgg=hed16" in message and "vgg.weights=/path/to/vgg16.pth" in message and "\n" not in message


def test_an_encoder_is_named_by_arch_and_weights(vgg16_weights) -> None:
    assert encoder_spec("vgg16:hed") == ("vgg16", "hed") == encoder_spec("hed")
    assert encoder_spec("imagenet") == ("vgg19", "imagenet") and encoder_spec("random", "vgg16") == ("vgg16", "random")
    assert encoder_spec("C:/w/vgg.pth") == ("vgg19", "C:/w/vgg.pth")  # a colon naming no arch belongs to a path
    encoder = VGGFeatures(["relu4_2", "relu5_1"], weights=str(vgg16_weights), arch="vgg16")
    assert encoder.label == f"vgg16:{vgg16_weights}" and encoder_spec(encoder.label) == ("vgg16", str(vgg16_weights))
    assert encoder(torch.rand(1, 3, 32, 32))["relu5_1"].shape == (1, 512, 2, 2)
