"""Training the fast style network (Johnson et al. 2016) with the noise stability loss (Rainy & de Berker 2018).

:class:`StyleTransferModule` holds the training logic only: the network is a plain
:class:`~nst.transformer_net.TransformerNet` and every loss term comes from the shared
:class:`~nst.losses.StyleTransferCriterion`, so the metric names match the Gatys loop's
(``loss/content``, ``loss/style``, ``loss/tv``, ``loss/noise``, ``loss/total``).

Per step: the clean batch and its noisy copy go through the network in one forward (``torch.cat``);
VGG sees the clean input once (content targets, up to the content layer) and the clean output once
(content + style); the noise term is a pixel MSE between the two outputs and needs no VGG pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from nst.config import build, style_paths
from nst.errors import NSTError
from nst.image import load_image
from nst.losses import StyleTransferCriterion, noise_stability_loss, stability_noise

#: Noise of the validation metric ``val/stability`` and of the sample grids: the paper's defaults
#: (1000 pixels, +-30 on a 0-255 scale), fixed whatever ``noise.*`` trains with, so that runs of a
#: sweep over the noise settings (``noise.pixels=0`` included) are measured on the same footing.
PROBE_PIXELS = 1000
PROBE_RANGE = 30
#: Checkpoint keys under this prefix (the frozen VGG) are not saved; they are rebuilt from ``vgg.*``.
FROZEN_PREFIX = "criterion."

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def seeded_generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded from ``parts`` (e.g. seed, epoch): reproducible, and identical after a resume."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


class StyleTransferModule(L.LightningModule):
    """Trains ``net`` to stylize any image in one forward pass, stable under small input noise.

    Args:
        net: the image transformation network, (B,3,H,W) in [0,1] -> same shape in [0,1].
        criterion: the shared loss; its ``noise`` weight switches the stability term on or off.
        optimizer: ``params -> Optimizer`` (a Hydra ``_partial_``); default Adam, lr 1e-3 (Johnson 2016).
        style_images: (1,3,H,W) tensors; their blended Gram matrices become the style targets, computed
            once when fitting starts (on the training device).
        style_blend: one weight per style image (``None``: equal).
        noise_pixels / noise_range: the stability noise (Rainy & de Berker 2018): how many pixels change,
            by at most how much on a 0-255 scale. ``noise_pixels=0`` turns the term and the noisy half
            of the forward off.
        noise_per_epoch: ``True`` keeps one noise image per epoch (the original code), ``False`` draws
            fresh noise for every image of every batch. Both are seeded by ``noise_seed``.
        channels_last: NHWC memory format for the network, VGG and inputs (faster convs on recent GPUs).
        compile: ``torch.compile`` the network (its state-dict keys are unchanged).
    """

    def __init__(
        self,
        net: nn.Module,
        criterion: StyleTransferCriterion,
        optimizer: OptimizerFactory | None = None,
        style_images: Sequence[torch.Tensor] = (),
        style_blend: Sequence[float] | None = None,
        noise_pixels: int = 0,
        noise_range: int = 30,
        noise_per_epoch: bool = True,
        noise_seed: int = 0,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if noise_pixels < 0 or noise_range < 0:
            raise NSTError(f"noise.pixels={noise_pixels} and noise.range={noise_range} must be >= 0")
        self.save_hyperparameters(ignore=["net", "criterion", "optimizer", "style_images"])
        self.net = net
        self.criterion = criterion
        self.optimizer_factory = optimizer
        self.style_images = [image.detach().cpu() for image in style_images]
        if not self.style_images and criterion.enabled("style"):
            raise NSTError("no style image given; set style.image (one path or a list of paths)")
        self._epoch_noise: torch.Tensor | None = None
        self._compiled = False

    @property
    def noise_enabled(self) -> bool:
        """Whether the stability term is trained: pixels and range > 0 and a non-zero ``noise`` weight."""
        hp = self.hparams
        return hp.noise_pixels > 0 and hp.noise_range > 0 and self.criterion.enabled("noise")

    # --- setup ------------------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        """Memory format and compilation, once, before Lightning moves the module to its device."""
        if self.hparams.channels_last:
            self.net.to(memory_format=torch.channels_last)
            self.criterion.to(memory_format=torch.channels_last)
        if self.hparams.compile and not self._compiled:
            self.net.compile()  # compiles __call__ in place: parameter names stay the same
            self._compiled = True

    def on_fit_start(self) -> None:
        self._set_style()

    def on_validation_start(self) -> None:
        self._set_style()

    def _set_style(self) -> None:
        """Gram targets of the style image(s), computed once on the training device (Johnson 2016)."""
        if self.criterion.enabled("style") and not self.criterion.target_grams:
            self.criterion.set_style(self.style_images, self.hparams.style_blend)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Only the network trains; VGG is frozen."""
        if self.optimizer_factory is None:
            return torch.optim.Adam(self.net.parameters(), lr=1e-3)
        return self.optimizer_factory(self.net.parameters())

    # --- steps ------------------------------------------------------------------------------------

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Stylize images in [0, 1]."""
        return self.net(self._prepare(images))

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        x = self._prepare(batch)
        noisy = (x + self._training_noise(x)).clamp(0, 1) if self.noise_enabled else None
        terms = self._losses(x, noisy)
        self.log_dict(
            {f"loss/{name}": value.detach() for name, value in terms.items()},
            on_step=True,
            on_epoch=False,
            batch_size=len(x),
        )
        return terms["total"]

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        """Loss terms on the fixed validation images with fixed probe noise, plus ``val/stability``:
        the unweighted MSE between f(x) and f(x + noise), comparable across noise settings."""
        x = self._prepare(batch)
        noise = self.probe_noise(x.shape, seed=("val", batch_idx), device=x.device)
        noisy = (x + noise).clamp(0, 1)
        output, noisy_output = self._stylize(x, noisy)
        use_noise = self.criterion.enabled("noise")
        terms = self.criterion(
            output, self.criterion.content_targets(x), noisy_image=noisy_output if use_noise else None
        )
        metrics = {f"val/loss/{name}": value for name, value in terms.items()}
        metrics["val/stability"] = noise_stability_loss(output, noisy_output)
        self.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(x))

    def _losses(self, x: torch.Tensor, noisy: torch.Tensor | None) -> dict[str, torch.Tensor]:
        output, noisy_output = self._stylize(x, noisy)
        return self.criterion(output, self.criterion.content_targets(x), noisy_image=noisy_output)

    def _stylize(self, x: torch.Tensor, noisy: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One forward for the clean and the noisy batch: instance norm keeps the halves independent."""
        if noisy is None:
            return self.net(x), None
        out = self.net(torch.cat([x, noisy]))
        return out[: len(x)], out[len(x) :]

    def _prepare(self, batch: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last:
            return batch.contiguous(memory_format=torch.channels_last)
        return batch

    # --- noise ------------------------------------------------------------------------------------

    def on_train_epoch_start(self) -> None:
        self._epoch_noise = None  # drawn again (seeded by the epoch) on the epoch's first batch

    def _training_noise(self, x: torch.Tensor) -> torch.Tensor:
        """Noise to add to ``x``: the epoch's noise image (broadcast over the batch) or a fresh draw."""
        hp = self.hparams
        b, _, h, w = x.shape
        if hp.noise_per_epoch:
            if self._epoch_noise is None or self._epoch_noise.shape[-2:] != (h, w):
                gen = seeded_generator(hp.noise_seed, "epoch", self.current_epoch)
                self._epoch_noise = stability_noise(1, h, w, hp.noise_pixels, hp.noise_range, gen, x.device)
            return self._epoch_noise.to(x.dtype)
        gen = seeded_generator(hp.noise_seed, "step", self.global_step, self.global_rank)
        return stability_noise(b, h, w, hp.noise_pixels, hp.noise_range, gen, x.device).to(x.dtype)

    @staticmethod
    def probe_noise(shape: Sequence[int], seed: object = 0, device: torch.device | str | None = None) -> torch.Tensor:
        """The fixed noise (:data:`PROBE_PIXELS`, :data:`PROBE_RANGE`) used to measure popping."""
        b, _, h, w = shape
        return stability_noise(b, h, w, PROBE_PIXELS, PROBE_RANGE, seeded_generator("probe", seed), device)

    # --- checkpoints ------------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Leave the frozen VGG out of ``.ckpt`` files: it is ~80 MB and rebuilt from the config."""
        state = checkpoint["state_dict"]
        checkpoint["state_dict"] = {k: v for k, v in state.items() if not k.startswith(FROZEN_PREFIX)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Fill in the VGG keys left out on save, so strict loading still fails on any other missing key."""
        state = checkpoint["state_dict"]
        for key, value in self.criterion.state_dict(prefix=FROZEN_PREFIX).items():
            state.setdefault(key, value)


def build_criterion(cfg: DictConfig) -> StyleTransferCriterion:
    """The shared criterion from ``loss.*`` and ``vgg.*``; the noise weight is 0 when ``noise.pixels`` is 0."""
    noise = cfg.noise
    noise_weight = float(noise.weight) if noise.pixels > 0 and noise.range > 0 else 0.0
    return build(cfg.loss, encoder=OmegaConf.to_container(cfg.vgg, resolve=True), noise_weight=noise_weight)


def load_style_images(style: DictConfig, size: int | None) -> list[torch.Tensor]:
    """The style image(s), long side scaled to ``size``: the same scale as the training crops, so
    brush strokes keep their size relative to the content whatever the painting's resolution."""
    return [load_image(path, max_size=size) for path in style_paths(style)]


def build_module(cfg: DictConfig) -> StyleTransferModule:
    """A :class:`StyleTransferModule` from the train config (``model``, ``loss``, ``vgg``, ``noise``,
    ``optimizer``, ``style``, ``trainer.channels_last``, ``trainer.compile``)."""
    net = build(cfg.model)
    blend = cfg.style.get("blend")
    return StyleTransferModule(
        net=net,
        criterion=build_criterion(cfg),
        optimizer=build(cfg.optimizer),
        style_images=load_style_images(cfg.style, cfg.style.get("size")),
        style_blend=list(blend) if blend is not None else None,
        noise_pixels=int(cfg.noise.pixels),
        noise_range=int(cfg.noise.range),
        noise_per_epoch=bool(cfg.noise.per_epoch),
        noise_seed=int(cfg.noise.seed),
        channels_last=bool(cfg.trainer.get("channels_last", False)),
        compile=bool(cfg.trainer.get("compile", False)),
    )


def trainer_kwargs(trainer_cfg: Mapping) -> dict[str, Any]:
    """``trainer.*`` minus the two keys the module consumes (``channels_last``, ``compile``)."""
    if isinstance(trainer_cfg, DictConfig):
        kwargs = OmegaConf.to_container(trainer_cfg, resolve=True)
    else:
        kwargs = dict(trainer_cfg)
    kwargs.pop("channels_last", None)
    kwargs.pop("compile", None)
    return kwargs
