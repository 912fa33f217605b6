"""Fixtures of the Gatys tests: a seeded random VGG, the bundled photo and a style at 64 px.

The random VGG's activations are small, so the style weight here is 1e9: that puts the style loss near 50 at
the start, a real signal.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from nst.encoders.vgg import VGGFeatures
from nst.gatys.image import stylize_image
from nst.gatys.loop import LoopSettings, StylizeResult
from nst.io.image import load_input
from nst.losses import StyleTransferCriterion

ASSETS = Path(__file__).resolve().parents[2] / "assets"
CONTENT_LAYERS = ["block4_conv2"]
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
STYLE_WEIGHT = 1e9
NAMES = ["loss/content", "loss/style", "loss/tv", "loss/total"]
ADAM = functools.partial(torch.optim.Adam, lr=0.02, betas=(0.99, 0.999), eps=0.1)


@pytest.fixture(scope="module")
def encoder() -> VGGFeatures:
    return VGGFeatures([*CONTENT_LAYERS, *STYLE_LAYERS], weights="random", seed=0)


@pytest.fixture(scope="module")
def content() -> torch.Tensor:
    return load_input(ASSETS / "content" / "chelsea.jpg", 64)  # 64x43


@pytest.fixture(scope="module")
def style() -> torch.Tensor:
    return load_input(ASSETS / "styles" / "udnie.jpg", 64)


#: LoopSettings' fields, accepted as keywords by :func:`stylize`.
LOOP_KEYS = ("iterations", "optimizer", "patience", "tolerance", "precision", "channels_last", "sync_every")


def stylize(content: torch.Tensor, crit: StyleTransferCriterion, **kwargs) -> StylizeResult:
    """``stylize_image`` with the loop settings given as keywords; no early stop unless ``patience`` is given."""
    loop = {key: kwargs.pop(key) for key in LOOP_KEYS if key in kwargs}
    loop.setdefault("patience", None)
    return stylize_image(content, crit, settings=LoopSettings(**loop), **kwargs)


def criterion(encoder: VGGFeatures, **weights: float) -> StyleTransferCriterion:
    weights.setdefault("style_weight", STYLE_WEIGHT)
    return StyleTransferCriterion(encoder, CONTENT_LAYERS, STYLE_LAYERS, **weights)


@pytest.fixture(scope="module")
def lbfgs_run(encoder, content, style) -> StylizeResult:
    return stylize(content, criterion(encoder), style_images=[style], iterations=30)




class SpikeOnCalls:
    """Wraps ``crit``'s forward: records every evaluated image and total loss, and makes the total 1000x larger on
    the given (1-based) calls, so that the last image evaluated is not the one of the lowest loss."""

    def __init__(self, crit: StyleTransferCriterion, calls: set[int]):
        self.calls, self.images, self.totals = set(calls), [], []
        forward = crit.forward

        def spiking(image: torch.Tensor, *args, **kwargs) -> dict[str, torch.Tensor]:
            terms = dict(forward(image, *args, **kwargs))
            if len(self.images) + 1 in self.calls:
                terms["total"] = terms["total"] * 1000
            self.images.append(image.detach().clone())
            self.totals.append(float(terms["total"].detach()))
            return terms

        crit.forward = spiking

    def best(self, first: int = 0, last: int | None = None) -> int:
        """The call (0-based) of the lowest total among calls ``first`` .. ``last - 1``."""
        return min(range(first, len(self.totals) if last is None else last), key=self.totals.__getitem__)
