"""The loss terms of style transfer: the only implementation, shared by the Gatys loop and the fast network.

Each term has a plain function (easy to test by hand) and :class:`StyleTransferCriterion` combines the
weighted terms, returning every term by name for logging. Papers: content and Gram style losses
(Gatys et al. 2016), total variation and perceptual training (Johnson et al. 2016), the masked temporal
loss (Ruder et al. 2016/2018), and the noise stability loss (Rainy & de Berker 2018).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from nst.errors import NSTError


class Encoder(Protocol):
    """What the criterion needs of an encoder: features by layer name, and the device it runs on.

    :class:`~nst.encoders.vgg.VGGFeatures` is one; tests pass a tiny 1x1-conv encoder.
    """

    device: torch.device

    def __call__(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]: ...


#: Builds an encoder able to return the given layers (e.g. ``VGGFeatures`` with its settings bound).
EncoderFactory = Callable[[list[str]], Encoder]

#: Names of the terms the criterion can return (besides ``total``), in logging order.
TERMS = ("content", "style", "tv", "temporal", "noise")


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices (B, C, C) of features (B, C, H, W), normalised by C*H*W, from float32 features outside
    autocast; the matmul follows torch's float32 matmul precision (TF32 on Ampere+ GPUs under train.py)."""
    b, c, h, w = features.shape
    with torch.autocast(device_type=features.device.type, enabled=False):
        flat = features.float().reshape(b, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between feature maps (Gatys et al. 2016, eq. 1, as a mean)."""
    return F.mse_loss(features.float(), target.float())


#: How each layer's Gram MSE is scaled: ``none`` (Gatys et al. 2016) or by the ``target`` Gram's mean square.
STYLE_NORMALIZATIONS = ("none", "target")


def style_loss(
    grams: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float] | None = None,
    normalization: str = "none",
) -> torch.Tensor:
    """Weighted mean over layers of the MSE between Gram matrices.

    ``target_grams`` may hold one (1, C, C) matrix per layer; it is broadcast over the batch.
    Layers weigh equally unless ``layer_weights`` says otherwise; weights are normalised to sum to 1.
    ``normalization="target"`` divides each layer's MSE by the mean square of its target Gram matrix, a relative
    error: layers whose activations are orders of magnitude apart (HED's relu1_2 Gram MSE is ~1e7 times its
    relu4_3's) and paintings of different contrast then weigh as their layer weights say.
    """
    if normalization not in STYLE_NORMALIZATIONS:
        choices = ", ".join(STYLE_NORMALIZATIONS)
        raise NSTError(f"loss.style_normalization must be one of {choices}, got {normalization!r}")
    weights = {name: 1.0 for name in grams} if layer_weights is None else dict(layer_weights)
    total_weight = sum(weights[name] for name in grams)
    loss = 0.0
    for name in grams:
        error = (grams[name] - target_grams[name]).pow(2).mean()
        if normalization == "target":
            error = error / target_grams[name].pow(2).mean().clamp_min(1e-30)
        loss = loss + weights[name] * error
    return loss / total_weight


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation with squared differences (Johnson et al. 2016, beta=2), averaged per pixel."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.float().pow(2).mean() + dy.float().pow(2).mean()


#: How the temporal term is normalised: ``all`` pixels (Ruder et al.'s 1/D, D = W*H*C) or only the ``valid`` ones.
TEMPORAL_NORMALIZATIONS = ("all", "valid")


def _check_temporal_normalization(name: str) -> str:
    if name not in TEMPORAL_NORMALIZATIONS:
        choices = ", ".join(TEMPORAL_NORMALIZATIONS)
        raise NSTError(f"loss.temporal_normalization must be one of {choices}, got {name!r}")
    return name


def temporal_loss(
    image: torch.Tensor, warped: torch.Tensor, mask: torch.Tensor | None = None, normalization: str = "all"
) -> torch.Tensor:
    """Masked squared difference between a frame and the warped previous stylized frame (Ruder et al. 2016).

    ``mask`` (B, 1, H, W) or (B, C, H, W) is 1 where the flow is reliable and 0 where it is not (occlusions,
    motion boundaries). ``normalization="all"`` divides the masked sum by every element (B*C*H*W), as
    Ruder et al.'s 1/D with D = W*H*C, so a weight means the same on every frame whatever its occlusions;
    ``"valid"`` divides by the valid elements only (a mean over them; no valid pixel gives 0), which
    up-weights the few valid pixels of a heavily occluded frame. Without a mask both are the plain mean.
    """
    _check_temporal_normalization(normalization)
    diff = (image.float() - warped.float()).pow(2)
    if mask is None:
        return diff.mean()
    mask = mask.float().expand_as(diff)
    count = mask.sum().clamp_min(1.0) if normalization == "valid" else diff.numel()
    return (diff * mask).sum() / count


def noise_stability_loss(output: torch.Tensor, noisy_output: torch.Tensor) -> torch.Tensor:
    """MSE between stylize(x) and stylize(x + noise) (Rainy & de Berker 2018)."""
    return F.mse_loss(output.float(), noisy_output.float())


def _layer_weights(layers: Sequence[str], weights: Sequence[float] | None, what: str) -> dict[str, float]:
    if weights is None:
        return {name: 1.0 for name in layers}
    if len(weights) != len(layers):
        raise NSTError(f"loss.{what}_layer_weights has {len(weights)} values for {len(layers)} {what} layers")
    return {name: float(w) for name, w in zip(layers, weights)}


class StyleTransferCriterion(nn.Module):
    """Weighted content + style + TV + temporal + noise-stability loss, returning each term by name.

    Style targets are set once with :meth:`set_style` (Gram matrices of one or several blended style
    images, cached and broadcast over any batch). Content targets are features of the content image,
    from :meth:`content_targets`. ``forward`` returns the *weighted* terms that are enabled (weight > 0
    and their inputs given) and ``total``, their sum, so logged terms add up to the total.

    Args:
        encoder: an :class:`Encoder` (an ``nn.Module`` mapping ``(image, layers)`` to features, with a
            ``device``), or a factory ``layers -> encoder`` (Hydra ``_partial_`` of
            :class:`~nst.encoders.vgg.VGGFeatures`), called with exactly the layers needed here.
        content_layers / style_layers: VGG layer names (see :mod:`nst.encoders.vgg`).
        content_layer_weights / style_layer_weights: optional per-layer weights (default equal).
        *_weight: the weight of each term; 0 disables it.
        style_normalization: ``none`` (default) or ``target``: see :func:`style_loss`.
        temporal_normalization: ``all`` (default, Ruder et al. 2016: the masked squared error divided by all
            W*H*C elements, so ``temporal_weight`` means the same on every frame) or ``valid`` (divided by the
            valid elements only); see :func:`temporal_loss`.
    """

    def __init__(
        self,
        encoder: Encoder | EncoderFactory,
        content_layers: Sequence[str],
        style_layers: Sequence[str],
        content_weight: float = 1.0,
        style_weight: float = 1e6,
        tv_weight: float = 0.0,
        temporal_weight: float = 0.0,
        noise_weight: float = 0.0,
        content_layer_weights: Sequence[float] | None = None,
        style_layer_weights: Sequence[float] | None = None,
        temporal_normalization: str = "all",
        style_normalization: str = "none",
    ):
        super().__init__()
        self.content_layers = _layer_weights(list(content_layers), content_layer_weights, "content")
        self.style_layers = _layer_weights(list(style_layers), style_layer_weights, "style")
        if not isinstance(encoder, nn.Module):
            encoder = encoder([*self.content_layers, *self.style_layers])
        self.encoder = encoder
        self.weights = {
            "content": float(content_weight),
            "style": float(style_weight),
            "tv": float(tv_weight),
            "temporal": float(temporal_weight),
            "noise": float(noise_weight),
        }
        self.temporal_normalization = _check_temporal_normalization(temporal_normalization)
        if style_normalization not in STYLE_NORMALIZATIONS:
            raise NSTError(f"loss.style_normalization must be one of {', '.join(STYLE_NORMALIZATIONS)}")
        self.style_normalization = style_normalization
        self.target_grams: dict[str, torch.Tensor] = {}

    def enabled(self, term: str) -> bool:
        """Whether a term has a non-zero weight."""
        return self.weights[term] != 0

    @torch.no_grad()
    def set_style(self, images: Sequence[torch.Tensor] | torch.Tensor, blend: Sequence[float] | None = None) -> None:
        """Compute the target Gram matrices once: a blend-weighted mean over style images (each (1,3,H,W))."""
        if isinstance(images, torch.Tensor):
            images = [images]
        blend = [1.0] * len(images) if blend is None else [float(b) for b in blend]
        if len(blend) != len(images) or sum(blend) <= 0:
            raise NSTError(f"style.blend needs one positive weight per style image ({len(images)}), got {blend}")
        layers = list(self.style_layers)
        mixed: dict[str, torch.Tensor] = {}
        for image, weight in zip(images, blend):
            feats = self.encoder(image.to(self.device), layers=layers)
            for name in layers:
                gram = gram_matrix(feats[name]).mean(0, keepdim=True) * (weight / sum(blend))
                mixed[name] = mixed[name] + gram if name in mixed else gram
        self.target_grams = mixed

    @torch.no_grad()
    def content_targets(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of the content image(s) at the content layers (no gradient)."""
        return {k: v.detach() for k, v in self.encoder(content, layers=list(self.content_layers)).items()}

    def forward(
        self,
        image: torch.Tensor,
        content_targets: Mapping[str, torch.Tensor] | None = None,
        *,
        temporal_target: torch.Tensor | None = None,
        temporal_mask: torch.Tensor | None = None,
        temporal_image: torch.Tensor | None = None,
        noisy_image: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Weighted loss terms of ``image`` (B,3,H,W in [0,1]) and their sum under ``total``.

        ``temporal_target``/``temporal_mask``: the warped previous stylized frame and its validity mask.
        ``temporal_image``: the frame compared with ``temporal_target`` when it is not ``image`` (the fast
        network's synthetic motion compares the stylized moved frame with the moved stylized frame).
        ``noisy_image``: the network's output for the noisy input, for the stability term.
        """
        use_content = self.enabled("content") and content_targets is not None
        use_style = self.enabled("style")
        if use_style and not self.target_grams:
            raise RuntimeError("call set_style() before computing the style loss")
        layers = [*(self.content_layers if use_content else ()), *(self.style_layers if use_style else ())]
        feats = self.encoder(image, layers=layers) if layers else {}
        raw: dict[str, torch.Tensor] = {}
        if use_content:
            total_w = sum(self.content_layers.values())
            raw["content"] = sum(
                w * content_loss(feats[n], content_targets[n]) for n, w in self.content_layers.items()
            ) / total_w
        if use_style:
            grams = {name: gram_matrix(feats[name]) for name in self.style_layers}
            raw["style"] = style_loss(grams, self.target_grams, self.style_layers, self.style_normalization)
        if self.enabled("tv"):
            raw["tv"] = tv_loss(image)
        if self.enabled("temporal") and temporal_target is not None:
            compared = image if temporal_image is None else temporal_image
            raw["temporal"] = temporal_loss(compared, temporal_target, temporal_mask, self.temporal_normalization)
        if self.enabled("noise") and noisy_image is not None:
            raw["noise"] = noise_stability_loss(image, noisy_image)
        terms = {name: self.weights[name] * value for name, value in raw.items()}
        terms["total"] = sum(terms.values()) if terms else image.new_zeros(())
        return terms

    @property
    def device(self) -> torch.device:
        """The device the encoder (and so the loss) runs on."""
        return self.encoder.device

    def _apply(self, fn, *args, **kwargs):  # keep cached Gram targets on the module's device
        super()._apply(fn, *args, **kwargs)
        self.target_grams = {k: fn(v) for k, v in self.target_grams.items()}
        return self
