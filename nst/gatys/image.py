"""One still image by optimisation (Gatys, Ecker & Bethge 2016): targets, the initial image, colour preservation.

:func:`stylize_image` sets the criterion's targets, picks the start image and runs the shared
:class:`~nst.gatys.loop.PixelOptimizer`; video frames (Ruder et al. 2016) reuse the same loop and settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from nst import color
from nst.errors import NSTError
from nst.gatys.loop import LoopCallback, LoopSettings, PixelOptimizer, StylizeResult, autocast
from nst.losses import StyleTransferCriterion

INITS = ("content", "noise", "style")


def initial_image(
    init: str | torch.Tensor, content: torch.Tensor, style: torch.Tensor | None, seed: int
) -> torch.Tensor:
    """The start image: the content, seeded white noise (drawn on the CPU so every device starts alike),
    the first style image resized to the content, or a given tensor."""
    if isinstance(init, torch.Tensor):
        if init.shape != content.shape:
            raise NSTError(f"init image has shape {tuple(init.shape)}, the content {tuple(content.shape)}")
        return init.to(content.device, torch.float32)
    if init == "content":
        return content.clone()
    if init == "noise":
        generator = torch.Generator().manual_seed(int(seed))
        return torch.rand(content.shape, generator=generator).to(content.device)
    if init == "style":
        if style is None:
            raise NSTError("init=style needs a style image")
        return F.interpolate(style, size=content.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
    raise NSTError(f"init must be one of {', '.join(INITS)}, got {init!r}")


def stylize_image(
    content: torch.Tensor,
    criterion: StyleTransferCriterion,
    *,
    settings: LoopSettings | None = None,
    style_images: Sequence[torch.Tensor] | None = None,
    style_blend: Sequence[float] | None = None,
    init: str | torch.Tensor = "content",
    preserve_color: bool = False,
    callbacks: Sequence[LoopCallback | Callable] = (),
    seed: int = 0,
) -> StylizeResult:
    """Gatys et al. 2016 for one image: optimise pixels so their VGG features match ``content``'s and their
    Gram matrices match the style's.

    Args:
        content: (1, 3, H, W) in [0, 1]; the output has its size. Moved to the criterion's device.
        criterion: the shared loss; its style targets are set here from ``style_images`` (blended with
            ``style_blend``), or must already be set when no style images are given.
        settings: iterations, optimiser, early stop, precision (default: :class:`LoopSettings`).
        init: ``content``, ``noise`` (seeded white noise), ``style`` (first style image, resized), or a tensor.
        preserve_color: luminance-only transfer (Gatys et al. 2016b, see :mod:`nst.color`); needs the style
            images, whose luminance is matched to the content's.
        callbacks: :class:`LoopCallback` objects or plain per-iteration functions.
    """
    settings = settings or LoopSettings()
    start = time.perf_counter()
    result: StylizeResult | None = None
    try:
        device = criterion.device
        content = content.to(device, torch.float32)
        styles = [s.to(device, torch.float32) for s in style_images] if style_images is not None else None
        work_content = content
        if preserve_color:
            if not styles:
                raise NSTError("preserve_color needs the style images, to match their luminance to the content's")
            work_content = color.luminance_only(content)
            styles = [color.match_luminance(s, content) for s in styles]
        if settings.channels_last:
            criterion.to(memory_format=torch.channels_last)
        with autocast(device, settings.precision):
            if styles:
                criterion.set_style(styles, style_blend)
            targets = criterion.content_targets(work_content) if criterion.enabled("content") else None
        if criterion.enabled("style") and not criterion.target_grams:
            raise NSTError("no style targets: pass style_images or call criterion.set_style() first")
        x0 = initial_image(init, work_content, styles[0] if styles else None, seed)
        loop = PixelOptimizer(settings, callbacks)
        image, history, count, reason = loop.run(x0, lambda x: criterion(x, targets))
        image = color.restore_color(image, content) if preserve_color else image.clamp(0, 1)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        result = StylizeResult(image, history, count, reason, time.perf_counter() - start, loop.best)
        return result
    finally:
        for cb in callbacks:
            if isinstance(cb, LoopCallback):
                cb.on_end(result)
