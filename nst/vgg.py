"""VGG-19 features by layer name: the one encoder every perceptual loss uses (Simonyan & Zisserman 2015).

Two naming conventions are accepted, both mapped to indices of torchvision's ``vgg19().features``:

* Keras-style names from Table I of the paper: ``block1_conv1`` ... ``block5_conv4``, ``block1_pool`` ...
  A Keras convolution includes its ReLU, so ``block4_conv2`` is the *post-ReLU* output, the very same
  tensor as ``relu4_2``.
* PyTorch-style names: ``relu1_1`` ... ``relu5_4`` (post-ReLU), ``conv1_1`` ... (pre-ReLU), ``pool1`` ...

The extractor takes images in [0, 1], applies the ImageNet mean/std itself, runs only as deep as the
deepest requested layer, and is frozen (eval mode, no parameter gradients).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn
from torchvision.models import VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

from nst.errors import NSTError

#: Convolutions per block in VGG-19.
_BLOCKS = (2, 2, 4, 4, 4)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_indices() -> dict[str, int]:
    names: dict[str, int] = {}
    index = 0
    for block, convs in enumerate(_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            names[f"conv{block}_{conv}"] = index
            names[f"relu{block}_{conv}"] = index + 1
            names[f"block{block}_conv{conv}"] = index + 1  # Keras conv = conv + ReLU
            index += 2
        names[f"pool{block}"] = index
        names[f"block{block}_pool"] = index
        index += 1
    return names


#: Layer name -> index into ``torchvision.models.vgg19().features``.
LAYER_INDICES: dict[str, int] = _layer_indices()


def layer_index(name: str) -> int:
    """Index of a named layer in ``vgg19().features``; a clear error for unknown names."""
    try:
        return LAYER_INDICES[name]
    except KeyError:
        raise NSTError(
            f"unknown VGG-19 layer {name!r}; use names like block4_conv2 (Keras, post-ReLU), relu4_2, conv4_2 or pool4"
        ) from None


class VGGFeatures(nn.Module):
    """Frozen VGG-19 returning ``{layer name: activation}`` for the requested layers.

    Args:
        layers: the layer names this extractor must be able to return; the network is cut after
            the deepest of them.
        weights: ``"imagenet"`` (torchvision's IMAGENET1K_V1, cached by torch hub), a path to a local
            torchvision-format state dict (full model or ``features`` only), or ``"random"`` (seeded;
            for tests and offline smoke runs).
        pooling: ``"max"`` (the paper's) or ``"avg"``.
        seed: the seed of the ``"random"`` weights.
    """

    def __init__(self, layers: Iterable[str], weights: str = "imagenet", pooling: str = "max", seed: int = 0):
        super().__init__()
        self.layers = list(dict.fromkeys(layers))
        if not self.layers:
            raise NSTError("VGGFeatures needs at least one layer name")
        if pooling not in ("max", "avg"):
            raise NSTError(f"vgg.pooling must be 'max' or 'avg', got {pooling!r}")
        self.weights = str(weights)
        self.pooling = pooling
        deepest = max(layer_index(name) for name in self.layers)
        features = _load_features(self.weights, seed)
        for i, module in enumerate(features):
            if isinstance(module, nn.ReLU):
                features[i] = nn.ReLU(inplace=False)  # pre-ReLU (conv*) outputs must survive
            elif isinstance(module, nn.MaxPool2d) and pooling == "avg":
                features[i] = nn.AvgPool2d(kernel_size=2, stride=2)
        self.features = features[: deepest + 1]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @property
    def device(self) -> torch.device:
        """The device of the encoder's weights, where images must be to go through it."""
        return self.mean.device

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stay in eval mode whatever a parent module asks: the encoder is a fixed measuring device."""
        return super().train(False)

    def forward(self, image: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Activations of ``layers`` (default: all of this extractor's layers) for images in [0, 1].

        The forward pass stops after the deepest layer asked for in this call.
        """
        wanted = self.layers if layers is None else list(layers)
        by_index: dict[int, list[str]] = {}
        for name in wanted:
            index = layer_index(name)
            if index >= len(self.features):
                raise NSTError(f"layer {name!r} is deeper than this extractor was built for ({self.layers})")
            by_index.setdefault(index, []).append(name)
        last = max(by_index)
        x = (image - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            for name in by_index.get(index, ()):
                out[name] = x
            if index == last:
                break
        return out


def _vgg19_features(initialise: bool = True) -> nn.Sequential:
    """torchvision's ``vgg19().features`` with its initialisation, without building the 100M-weight classifier.

    ``initialise=False`` skips the random initialisation of weights that a state dict will overwrite.
    """
    features = make_layers(cfgs["E"], batch_norm=False)
    for module in features.modules() if initialise else ():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return features


def _load_features(weights: str, seed: int) -> nn.Sequential:
    if weights == "random":
        _warn_random_weights()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _vgg19_features()
    features = _vgg19_features(initialise=False)
    state = _imagenet_state_dict() if weights == "imagenet" else _local_state_dict(Path(weights))
    features_state = {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier.")}
    try:
        features.load_state_dict(features_state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise NSTError(f"vgg.weights={weights} is not a VGG-19 state dict ({first})") from None
    return features


_RANDOM_WARNED = False


def _warn_random_weights() -> None:
    global _RANDOM_WARNED
    if not _RANDOM_WARNED:
        _RANDOM_WARNED = True
        warnings.warn(
            "vgg.weights=random: VGG-19 has random weights, so results will not look like paintings "
            "(fine for tests and offline smoke runs)",
            stacklevel=3,
        )


def _offline_hint() -> str:
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG19_Weights.IMAGENET1K_V1.url).name
    return (
        f"offline options: vgg.weights=/path/to/vgg19.pth (a torchvision VGG-19 state dict), "
        f"or copy that file to {cached}, or vgg.weights=random for a smoke run"
    )


def _imagenet_state_dict() -> dict[str, torch.Tensor]:
    url = VGG19_Weights.IMAGENET1K_V1.url
    try:
        return torch.hub.load_state_dict_from_url(url, progress=True, check_hash=True, weights_only=True)
    except (URLError, OSError, RuntimeError, ConnectionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NSTError(
            f"could not download the VGG-19 ImageNet weights from {url} ({reason}); {_offline_hint()}"
        ) from exc


def _local_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise NSTError(f"vgg.weights: no such file {path}; use imagenet, random or the path of a VGG-19 .pth")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        raise NSTError(f"vgg.weights: cannot read {path} as a PyTorch state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NSTError(f"vgg.weights: {path} does not hold a state dict of tensors")
    return state

