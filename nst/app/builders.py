"""Objects that need several config nodes at once: the shared criterion and the training module.

Each node is a constructor (``_target_`` + arguments); these functions only add the runtime objects one node
cannot hold (the encoder inside the criterion, the loaded style images), so every entry point, test and bench
assembles the same things the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from nst.app.config import build, named_styles, plain, training_style_paths
from nst.io.image import load_style_images
from nst.losses import StyleTransferCriterion

if TYPE_CHECKING:  # model._target_ imports it when training: optimize.py and its chunk jobs start without Lightning
    from nst.fastnet.module import StyleTransferModule


def build_criterion(cfg: DictConfig) -> StyleTransferCriterion:
    """The shared criterion of ``loss.*`` with the encoder of ``vgg.*``."""
    return build(cfg.loss, encoder=build(cfg.vgg))


def build_module(cfg: DictConfig) -> StyleTransferModule:
    """The training module of ``model.*`` with the criterion, the network optimizer, the noise, the
    temporal motion source and the style image(s), scaled to ``style.size``. ``style=[a,b,...]`` builds one
    network for all of them (conditional instance norm), its style names in its ``model_args``."""
    styles = named_styles(cfg.style)
    return build(
        cfg.model,
        **({"net": {"styles": list(styles)}} if styles else {}),
        criterion=build_criterion(cfg),
        optimizer=build(cfg.net_optimizer),
        noise=build(cfg.noise),
        temporal=build(cfg.temporal) if cfg.get("temporal") is not None else None,
        style_images=load_style_images(training_style_paths(cfg.style), cfg.style.get("size")),
        style_blend=plain(cfg.style.get("blend")),
    )
