"""VGG layer names and indices, and the ImageNet normalisation: what every encoder and loss refers to by name.

Two naming conventions, both mapped to indices of torchvision's ``vgg19().features`` / ``vgg16().features``
(Simonyan & Zisserman 2015): Keras-style ``block4_conv2`` (a Keras convolution includes its ReLU, so it is the
post-ReLU output, the very tensor ``relu4_2`` names) and PyTorch-style ``reluN_M``, ``convN_M`` (pre-ReLU),
``poolN``. VGG-16 has three convolutions in blocks 3-5, so ``block3_conv4`` / ``relu3_4`` exist in VGG-19 only.
"""

from __future__ import annotations

from typing import NamedTuple

from torchvision.models import VGG16_Weights, VGG19_Weights
from torchvision.models._api import WeightsEnum

from nst.errors import NSTError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Arch(NamedTuple):
    label: str  # for messages
    blocks: tuple[int, ...]  # convolutions per block
    cfg: str  # torchvision's key in ``cfgs``
    imagenet: WeightsEnum


ARCHS: dict[str, _Arch] = {
    "vgg16": _Arch("VGG-16", (2, 2, 3, 3, 3), "D", VGG16_Weights.IMAGENET1K_V1),
    "vgg19": _Arch("VGG-19", (2, 2, 4, 4, 4), "E", VGG19_Weights.IMAGENET1K_V1),
}


def _layer_indices(blocks: tuple[int, ...]) -> dict[str, int]:
    names: dict[str, int] = {}
    index = 0
    for block, convs in enumerate(blocks, start=1):
        for conv in range(1, convs + 1):
            names[f"conv{block}_{conv}"] = index
            names[f"relu{block}_{conv}"] = index + 1
            names[f"block{block}_conv{conv}"] = index + 1  # Keras conv = conv + ReLU
            index += 2
        names[f"pool{block}"] = index
        names[f"block{block}_pool"] = index
        index += 1
    return names


#: Layer name -> index into torchvision's ``vgg16().features`` / ``vgg19().features``, per architecture.
LAYER_INDICES_BY_ARCH: dict[str, dict[str, int]] = {arch: _layer_indices(a.blocks) for arch, a in ARCHS.items()}
#: Layer name -> index into ``torchvision.models.vgg19().features`` (the default architecture).
LAYER_INDICES: dict[str, int] = LAYER_INDICES_BY_ARCH["vgg19"]


def arch_info(arch: str) -> _Arch:
    if arch not in ARCHS:
        raise NSTError(f"vgg.arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    return ARCHS[arch]


def layer_index(name: str, arch: str = "vgg19") -> int:
    """Index of a named layer in ``<arch>().features``; one clear line listing the valid names otherwise."""
    label = arch_info(arch).label
    indices = LAYER_INDICES_BY_ARCH[arch]
    try:
        return indices[name]
    except KeyError:
        keras = " ".join(n for n in indices if n.startswith("block"))
        raise NSTError(
            f"unknown {label} layer {name!r}; valid: {keras} (Keras names, post-ReLU), "
            f"or the same layers as reluN_M, convN_M (pre-ReLU), poolN"
        ) from None
