"""Coarse to fine: optimise a still image at low resolution first, then upsample it and refine.

Large outputs are where the Gatys loop is slow: every iteration costs a VGG forward and backward at full
size, and most of those iterations only move the large-scale structure that a smaller image shows as
well. A pyramid optimises ``levels`` resolutions in turn, each ``factor`` times the previous and the last
one the content's own size; each level starts from the previous result, upsampled, so the full-size
iterations only have to add the fine detail. The style image(s) are scaled with the content, and their Gram
targets recomputed at every level, so strokes keep their size relative to the image: the coarse-to-fine
procedure Gatys et al. 2017 ("Controlling perceptual factors in neural style transfer") use for
high-resolution images, and pystiche's image pyramid.

Every level runs the same :class:`~nst.gatys.loop.PixelOptimizer` with the same :class:`LoopSettings` and
criterion; only the iteration budget differs per level. Callbacks see one run: iterations are numbered
across levels, and ``on_end`` comes once, with the full-size result.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nst import color
from nst.errors import NSTError
from nst.gatys.image import stylize_image
from nst.gatys.loop import IterationInfo, LoopCallback, LoopSettings, StylizeResult
from nst.io.image import MIN_SIDE
from nst.losses import StyleTransferCriterion


@dataclass
class Pyramid:
    """A coarse-to-fine schedule (the ``pyramid`` config node).

    Args:
        levels: resolutions, coarse to fine; 1 optimises at full size only (no pyramid).
        iterations: loss evaluations per level, coarse to fine: one number for every level, or a list of
            ``levels`` numbers; ``None``: the loop settings' ``iterations`` at every level.
        factor: size ratio between neighbouring levels (2: each level twice the previous one's sides).
    """

    levels: int = 1
    iterations: int | Sequence[int] | None = None
    factor: float = 2.0

    def __post_init__(self) -> None:
        if int(self.levels) < 1:
            raise NSTError(f"pyramid.levels must be at least 1 (1: no pyramid), got {self.levels}")
        self.levels = int(self.levels)
        if not float(self.factor) > 1:
            raise NSTError(f"pyramid.factor must be greater than 1, got {self.factor}")
        self.factor = float(self.factor)
        if self.iterations is not None and not isinstance(self.iterations, int):
            self.iterations = [int(n) for n in self.iterations]
            if len(self.iterations) != self.levels:
                raise NSTError(
                    f"pyramid.iterations has {len(self.iterations)} values for {self.levels} levels; "
                    "give one per level (coarse to fine) or a single number"
                )
        if any(n < 1 for n in self.schedule(1)):
            raise NSTError(f"pyramid.iterations must be at least 1 per level, got {self.iterations}")

    def schedule(self, default: int) -> list[int]:
        """Iterations per level, coarse to fine (``default``: the loop's ``iterations``)."""
        if self.iterations is None:
            return [int(default)] * self.levels
        if isinstance(self.iterations, int):
            return [self.iterations] * self.levels
        return list(self.iterations)

    def sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """(H, W) per level, coarse to fine; the last is ``(height, width)``. Every side must keep 32 px."""
        sizes = []
        for level in range(self.levels):
            scale = self.factor ** (level - self.levels + 1)
            sizes.append((max(1, round(height * scale)), max(1, round(width * scale))))
        h, w = sizes[0]
        if min(h, w) < MIN_SIDE:
            raise NSTError(
                f"pyramid.levels={self.levels} makes the coarsest level {w}x{h} for a {width}x{height} image: "
                f"both sides must be at least {MIN_SIDE} px for VGG's five poolings; use fewer levels"
            )
        return sizes

    def check(self, content: torch.Tensor, style_images: Sequence[torch.Tensor]) -> list[tuple[int, int]]:
        """:meth:`sizes` for ``content``, once the style image(s) are checked to keep 32 px at the coarsest level
        too; call it before a run's setup, so a bad schedule fails before any work."""
        sizes = self.sizes(*content.shape[-2:])
        for style in style_images:
            _scaled(style, sizes[0][0] / content.shape[-2])
        return sizes


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``image`` at ``size`` (H, W): antialiased bilinear down, bicubic up (clamped to [0, 1])."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    if size[0] < image.shape[-2]:
        return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False).clamp(0, 1)


def _scaled(style: torch.Tensor, scale: float) -> tuple[int, int]:
    h, w = (max(1, round(side * scale)) for side in style.shape[-2:])
    if min(h, w) < MIN_SIDE:
        raise NSTError(
            f"a style image is {w}x{h} at the coarsest pyramid level: both sides must be at least {MIN_SIDE} px; "
            "use fewer pyramid.levels or a larger style.size"
        )
    return h, w


def _renumbered(callbacks: Sequence[LoopCallback | Callable], offset: int, total: int) -> Callable:
    """One per-iteration hook that forwards to every callback with the iteration counted across levels."""
    hooks = [cb.on_iteration if isinstance(cb, LoopCallback) else cb for cb in callbacks]

    def hook(info: IterationInfo) -> None:
        shifted = dataclasses.replace(info, iteration=offset + info.iteration, iterations=total)
        for forward in hooks:
            forward(shifted)

    return hook


def stylize_pyramid(
    content: torch.Tensor,
    criterion: StyleTransferCriterion,
    *,
    pyramid: Pyramid | None = None,
    settings: LoopSettings | None = None,
    style_images: Sequence[torch.Tensor],
    style_blend: Sequence[float] | None = None,
    init: str | torch.Tensor = "content",
    preserve_color: bool = False,
    callbacks: Sequence[LoopCallback | Callable] = (),
    seed: int = 0,
) -> StylizeResult:
    """:func:`~nst.gatys.image.stylize_image` coarse to fine, over the levels of ``pyramid``.

    Arguments are those of :func:`~nst.gatys.image.stylize_image`; ``init`` applies to the coarsest level
    (a tensor init is scaled down to it). With one level this is exactly :func:`stylize_image`. The result
    has the content's size, the history of every level one after another, and the total time.
    """
    pyramid = pyramid or Pyramid()
    settings = settings or LoopSettings()
    schedule = pyramid.schedule(settings.iterations)
    if pyramid.levels == 1:
        return stylize_image(
            content, criterion, settings=dataclasses.replace(settings, iterations=schedule[0]),
            style_images=style_images, style_blend=style_blend, init=init, preserve_color=preserve_color,
            callbacks=callbacks, seed=seed,
        )
    start = time.perf_counter()
    sizes = pyramid.check(content, style_images)
    total, done, result = sum(schedule), 0, None
    history: dict[str, list[float]] = {}
    try:
        image: str | torch.Tensor = init
        for level, (size, iterations) in enumerate(zip(sizes, schedule)):
            scale = size[0] / content.shape[-2]
            styles = [resize(s, _scaled(s, scale)) for s in style_images]
            if isinstance(image, torch.Tensor):
                image = resize(image, size)
                if preserve_color and level > 0:  # the loop optimises luminance: start from the result's
                    image = color.luminance_only(image)
            step = stylize_image(
                resize(content, size), criterion, settings=dataclasses.replace(settings, iterations=iterations),
                style_images=styles, style_blend=style_blend, init=image, preserve_color=preserve_color,
                callbacks=[_renumbered(callbacks, done, total)], seed=seed,
            )
            for name, values in step.history.items():
                history.setdefault(name, []).extend(values)
            best = done + range(step.iterations)[step.best]  # the level's best image is the next level's start
            done += step.iterations
            image = step.image
        result = StylizeResult(step.image, history, done, step.stop_reason, time.perf_counter() - start, best)
        return result
    finally:
        for cb in callbacks:
            if isinstance(cb, LoopCallback):
                cb.on_end(result)
