"""Training the fast style network (Johnson et al. 2016) with the noise stability loss (Rainy & de Berker 2018).

:class:`StyleTransferModule` holds the training logic only: the network is a plain
:class:`~nst.fastnet.transformer_net.TransformerNet`, the noise comes from :mod:`nst.fastnet.noise`, and every
loss term comes from the shared :class:`~nst.losses.StyleTransferCriterion`, so the metric names match the
Gatys loop's (``loss/content``, ``loss/style``, ``loss/tv``, ``loss/noise``, ``loss/total``).

Per step: the clean batch and its noisy copy go through the network in one forward (``torch.cat``);
VGG sees the clean input once (content targets, up to the content layer) and the clean output once
(content + style); the noise term is a pixel MSE between the two outputs and needs no VGG pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from nst.errors import NSTError
from nst.fastnet.motion import MotionPairs, MotionSource, NoMotion, VideoMotion, carries_pairs, split_batch
from nst.fastnet.noise import StabilityNoise, probe_noise, seeded_generator
from nst.losses import StyleTransferCriterion, noise_stability_loss

#: Checkpoint keys under this prefix (the frozen VGG) are not saved; they are rebuilt from ``vgg.*``.
FROZEN_PREFIX = "criterion."

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def seed_training(seed: int) -> None:
    """Seed Python, NumPy, torch and the DataLoader workers (Lightning's ``seed_everything``), so the entry
    point needs no Lightning import of its own."""
    L.seed_everything(seed, workers=True, verbose=False)


class StyleTransferModule(L.LightningModule):
    """Trains ``net`` to stylize any image in one forward pass, stable under small input noise.

    Args:
        net: the image transformation network, (B,3,H,W) in [0,1] -> same shape in [0,1].
        criterion: the shared loss; its ``noise`` weight switches the stability term on or off.
        optimizer: ``params -> Optimizer`` (a Hydra ``_partial_``); default Adam, lr 1e-3 (Johnson 2016).
        style_images: (1,3,H,W) tensors; their blended Gram matrices become the style targets, computed
            once when fitting starts (on the training device). For a multi-style ``net`` (``net.styles``,
            conditional instance norm, Dumoulin et al. 2017) one image per style, in the net's order: each
            training batch draws one style (seeded by the step) and is conditioned on it.
        style_blend: one weight per style image (``None``: equal); single-style networks only.
        noise: the stability noise (:class:`~nst.fastnet.noise.StabilityNoise`); the term trains when the
            noise is enabled and the criterion's ``noise`` weight is not 0. ``None``: no noise.
        channels_last: NHWC memory format for the network, VGG and inputs (faster convs on recent GPUs);
            ``"auto"`` turns it on when training on CUDA.
        compile: ``torch.compile`` the network (its state-dict keys are unchanged).
        temporal: where the temporal term's previous frames come from (:mod:`nst.fastnet.motion`); the term
            trains when the source is enabled and the criterion's ``temporal`` weight is not 0.
    """

    def __init__(
        self,
        net: nn.Module,
        criterion: StyleTransferCriterion,
        optimizer: OptimizerFactory | None = None,
        style_images: Sequence[torch.Tensor] = (),
        style_blend: Sequence[float] | None = None,
        noise: StabilityNoise | None = None,
        channels_last: bool | str = "auto",
        compile: bool = False,
        temporal: MotionSource | None = None,
    ) -> None:
        super().__init__()
        if channels_last not in ("auto", True, False):
            raise NSTError(f"model.channels_last must be auto, true or false, got {channels_last!r}")
        self.save_hyperparameters(ignore=["net", "criterion", "optimizer", "style_images", "noise", "temporal"])
        self.net = net
        self.criterion = criterion
        self.optimizer_factory = optimizer
        self.style_images = [image.detach().cpu() for image in style_images]
        if not self.style_images and criterion.enabled("style"):
            raise NSTError("no style image given; set style.image (one path or a list of paths)")
        self.noise = noise or StabilityNoise(pixels=0)
        self.temporal = temporal or NoMotion()
        self.num_styles = int(getattr(net, "num_styles", 1))
        if self.num_styles > 1 and (len(self.style_images) != self.num_styles or style_blend is not None):
            raise NSTError(
                f"a network of {self.num_styles} styles needs one style image per style and no style.blend, "
                f"got {len(self.style_images)} image(s)"
            )
        self._style_grams: list[dict[str, torch.Tensor]] = []  # per style, for multi-style networks
        self._style: int | None = None  # the style of the current batch (multi-style networks)
        self._compiled = False
        self.channels_last: bool | str = channels_last  # resolved in setup()

    @property
    def noise_enabled(self) -> bool:
        """Whether the stability term is trained: noise to add and a non-zero ``noise`` weight."""
        return self.noise.enabled and self.criterion.enabled("noise")

    @property
    def temporal_enabled(self) -> bool:
        """Whether the temporal term is trained: a motion source and a non-zero ``temporal`` weight."""
        return self.temporal.enabled and self.criterion.enabled("temporal")

    def setup(self, stage: str) -> None:
        """Memory format and compilation, once, before Lightning moves the module to its device."""
        self.channels_last = self.hparams.channels_last
        if self.channels_last == "auto":
            self.channels_last = self._trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        if self.channels_last:
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
        """Gram targets of the style image(s), computed once on the training device (Johnson 2016); one set
        per style for a multi-style network."""
        if not self.criterion.enabled("style") or self.criterion.target_grams:
            return
        if self.num_styles == 1:
            self.criterion.set_style(self.style_images, self.hparams.style_blend)
            return
        for image in self.style_images:
            self.criterion.set_style([image])
            self._style_grams.append(self.criterion.target_grams)
        self._use_style(0)

    def _use_style(self, index: int) -> None:
        """Condition the network on style ``index`` and aim the style term at its Gram targets."""
        self._style = index
        if self._style_grams:
            self.criterion.target_grams = {k: v.to(self.device) for k, v in self._style_grams[index].items()}

    def _draw_style(self, step: int) -> None:
        """One style per training batch, drawn from a generator seeded by the step and rank (resumable)."""
        if self.num_styles > 1:
            generator = seeded_generator("style", step, self.global_rank)
            self._use_style(int(torch.randint(self.num_styles, (1,), generator=generator)))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Only the network trains; VGG is frozen."""
        if self.optimizer_factory is None:
            return torch.optim.Adam(self.net.parameters(), lr=1e-3)
        return self.optimizer_factory(self.net.parameters())

    def training_step(self, batch: torch.Tensor | dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, pairs_batch = split_batch(batch)
        x = self._prepare(images)
        self._draw_style(self.global_step)
        noisy = pairs = None
        if self.noise_enabled:
            noise = self.noise.sample(
                x, epoch=self.current_epoch, step=self.global_step, batch=batch_idx, rank=self.global_rank
            )
            noisy = (x + noise).clamp(0, 1)
        if self.temporal_enabled:
            pairs = self.temporal.pairs(x, pairs_batch, step=self.global_step, rank=self.global_rank)
        terms = self._losses(x, noisy, pairs)
        self.log_dict(
            {f"loss/{name}": value.detach() for name, value in terms.items()},
            on_step=True,
            on_epoch=False,
            batch_size=len(x),
        )
        return terms["total"]

    def validation_step(self, batch: torch.Tensor | dict[str, torch.Tensor], batch_idx: int) -> None:
        """Loss terms on the fixed validation images with fixed probe noise and fixed motion, so that
        ``val/loss/total`` (and ``best.ckpt``) weighs consistency as training does, plus ``val/stability``:
        the unweighted MSE between f(x) and f(x + noise), comparable across noise settings. A multi-style
        network is validated in every style: ``val/*`` are means over styles, ``val/<style>/loss/*`` each one."""
        images, pairs_batch = split_batch(batch)
        x = self._prepare(images)
        noise = probe_noise(x.shape, seed=("val", batch_idx), device=x.device)
        noisy = (x + noise).clamp(0, 1)
        pairs = None
        if self.temporal_enabled and (not isinstance(self.temporal, VideoMotion) or carries_pairs(pairs_batch)):
            pairs = self.temporal.pairs(x, pairs_batch, step=f"val{batch_idx}", rank=0)
        per_style: list[dict[str, torch.Tensor]] = []
        for index in range(self.num_styles):
            self._use_style(index)
            terms, output, noisy_output = self._terms(x, noisy, pairs, use_noise=self.noise_enabled)
            metrics = {f"loss/{name}": value for name, value in terms.items()}
            metrics["stability"] = noise_stability_loss(output, noisy_output)
            per_style.append(metrics)
        self._use_style(0)
        logged = {f"val/{k}": torch.stack([m[k] for m in per_style]).mean() for k in per_style[0]}
        if self.num_styles > 1:
            names = self.net.styles
            logged |= {f"val/{names[i]}/{k}": v for i, m in enumerate(per_style) for k, v in m.items() if "/" in k}
        self.log_dict(logged, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(x))

    def _losses(
        self, x: torch.Tensor, noisy: torch.Tensor | None, pairs: MotionPairs | None = None
    ) -> dict[str, torch.Tensor]:
        """The criterion's terms (see :meth:`_terms`)."""
        return self._terms(x, noisy, pairs)[0]

    def _terms(
        self, x: torch.Tensor, noisy: torch.Tensor | None, pairs: MotionPairs | None = None, use_noise: bool = True
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """(the criterion's terms, f(x), f(noisy)). Clean, noisy and partner frames go through the network in
        one forward (instance norm keeps them independent); the temporal term compares the two stylized frames
        of each pair, one warped onto the other (Ruder et al. 2018), masked (:class:`MotionPairs`)."""
        batches = [x] + ([noisy] if noisy is not None else []) + ([pairs.partner] if pairs is not None else [])
        outputs = self._net(torch.cat([self._prepare(b) for b in batches])).split(len(x))
        output, noisy_output = outputs[0], outputs[1] if noisy is not None else None
        temporal: dict[str, torch.Tensor] = {}
        if pairs is not None:
            compared, warped = pairs.compared(output, outputs[-1])
            temporal = {"temporal_image": compared, "temporal_target": warped, "temporal_mask": pairs.mask}
        terms = self.criterion(
            output,
            self.criterion.content_targets(x),
            noisy_image=noisy_output if use_noise else None,
            **temporal,
        )
        return terms, output, noisy_output

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        """The network, conditioned on the current style when it paints several."""
        return self.net(x) if self.num_styles == 1 else self.net(x, style=self._style)

    def _prepare(self, batch: torch.Tensor) -> torch.Tensor:
        if self.channels_last is True:
            return batch.contiguous(memory_format=torch.channels_last)
        return batch

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Leave the frozen VGG out of ``.ckpt`` files (it is ~80 MB and rebuilt from the config), and store the
        network's ``model_args``, so ``infer.py weights=<run>/checkpoints/best.ckpt`` can rebuild it (nanoGPT)."""
        state = checkpoint["state_dict"]
        checkpoint["state_dict"] = {k: v for k, v in state.items() if not k.startswith(FROZEN_PREFIX)}
        model_args = getattr(self.net, "model_args", None)
        if isinstance(model_args, dict):
            checkpoint["model_args"] = dict(model_args)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Fill in the VGG keys left out on save, so strict loading still fails on any other missing key."""
        state = checkpoint["state_dict"]
        for key, value in self.criterion.state_dict(prefix=FROZEN_PREFIX).items():
            state.setdefault(key, value)
