"""Video by optimisation (Ruder, Dosovitskiy & Brox 2016/2018): one loop over frames for every method.

Each frame is a still image for the shared :class:`~nst.gatys.loop.PixelOptimizer` and the shared criterion;
a method (:mod:`nst.gatys.temporal`) only chooses the start image and the criterion's temporal inputs.
Flows come from a :class:`~nst.flow.cache.VideoFlows`, whose worker computes them a few frames ahead, so the
loop never waits for them in steady state (the seed paper recomputed flow inside every loss evaluation).
Every finished frame is written atomically at once (:class:`~nst.gatys.video_store.PassFolders`), and a
run resumes at the first unfinished frame, restoring the previous stylized frames from disk.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from nst.errors import NSTError
from nst.flow import long_term_masks, warp
from nst.flow.cache import VideoFlows
from nst.flow.masks import photometric_mismatch
from nst.gatys.image import initial_image
from nst.gatys.loop import LoopSettings, PixelOptimizer, autocast
from nst.gatys.temporal import blended_init, combine_targets, filled_init, recipe
from nst.gatys.video_store import InputFrames, PassFolders, quantized
from nst.losses import StyleTransferCriterion
from nst.metrics import frame_warping_error

#: Steps whose flows the worker is asked for ahead of the one being optimised.
PREFETCH_AHEAD = 2


@dataclass
class VideoSettings:
    """How the frames of a video are optimised (``conf/video/default.yaml``).

    Args:
        method: a name of :data:`nst.gatys.temporal.METHODS`.
        first_frame_iterations: the budget of a pass's first frame; ``None``: twice the per-frame budget
            (Ruder et al. 2016). Later passes give their first frame the per-frame budget.
        long_term: offsets of the previous frames the temporal loss looks at (``consistent`` only): ``[1]``
            is the short-term loss, ``[1, 2, 4]`` Ruder's long-term one with closest-first masks.
        passes: forward/backward passes (``consistent`` only), Ruder's multi-pass algorithm.
        blend: multi-pass weight of the warped neighbour in the start image (delta, 0.5 in the paper).
        init: the first frame's start image: ``content`` or ``noise`` (as for stills).
        photometric: ``consistent`` only: a pixel whose input colour differs from the warped input neighbour by
            more than this (RGB in [0, 1]) is unreliable too (:func:`nst.flow.masks.photometric_mismatch`);
            0 turns the check off, leaving Ruder et al.'s masks alone.
    """

    method: str = "consistent"
    first_frame_iterations: int | None = None
    long_term: Sequence[int] = (1,)
    passes: int = 1
    blend: float = 0.5
    init: str = "content"
    seed: int = 0
    photometric: float = 0.05

    def __post_init__(self) -> None:
        rec = recipe(self.method)
        self.long_term = tuple(sorted({int(j) for j in self.long_term}))
        if not self.long_term or self.long_term[0] != 1:
            raise NSTError(f"video.long_term needs 1 and larger offsets (e.g. [1, 2, 4]), got {list(self.long_term)}")
        if int(self.passes) < 1 or (self.passes > 1 and not rec.full):
            raise NSTError(f"video.passes={self.passes}: use 1, or more with video.method=consistent")
        if not 0.0 < float(self.blend) <= 1.0:
            raise NSTError(f"video.blend must be in (0, 1], got {self.blend}")
        if self.first_frame_iterations is not None and int(self.first_frame_iterations) < 1:
            raise NSTError(f"video.first_frame_iterations must be at least 1, got {self.first_frame_iterations}")
        if not 0.0 <= float(self.photometric) <= 1.0:
            raise NSTError(f"video.photometric must be in [0, 1] (0: off), got {self.photometric}")
        if self.init not in ("content", "noise"):
            raise NSTError(f"init={self.init!r} for a video: use content or noise")
        self.passes = int(self.passes)

    @property
    def offsets(self) -> tuple[int, ...]:
        """The temporal loss's offsets actually used by the method."""
        return self.long_term if recipe(self.method).full else (1,)

    @property
    def pass_count(self) -> int:
        return self.passes if recipe(self.method).full else 1


@dataclass(frozen=True)
class FrameRecord:
    """One finished frame: what a progress bar, the CSV and W&B show."""

    pass_index: int
    step: int  # processing step within the pass
    frame: int  # frame index in the video
    losses: dict[str, float]  # final weighted terms, by metric name
    iterations: int
    stop_reason: str
    seconds: float
    flow_wait: float  # seconds the loop waited for flows and masks
    warp_error: float  # E_t against the frame processed before it (nan for a pass's first frame)


@dataclass
class VideoResult:
    """The outcome of :func:`stylize_video`."""

    frames: int
    passes: int
    computed: int  # frames optimised by this call (0 when the job was finished already)
    resumed_at: tuple[int, int]  # (pass, step) where this call started
    seconds: float
    records: list[FrameRecord] = field(default_factory=list)


def stylize_video(
    inputs: InputFrames,
    criterion: StyleTransferCriterion,
    flows: VideoFlows,
    store: PassFolders,
    *,
    settings: LoopSettings,
    video: VideoSettings,
    style_images: Sequence[torch.Tensor],
    style_blend: Sequence[float] | None = None,
    fps: float = 25.0,
    on_frame: Callable[[FrameRecord], None] | None = None,
    stop_after: int | None = None,
) -> VideoResult:
    """Stylize every frame of ``inputs`` into ``store``, resuming at its first unfinished frame.

    ``stop_after`` optimises at most that many frames in this call (a test hook standing for Ctrl-C).
    Memory holds only the frames the temporal terms need (``max(long_term)`` of them).
    """
    rec = recipe(video.method)
    device = criterion.device
    if settings.channels_last:
        criterion.to(memory_format=torch.channels_last)
    styles = [s.to(device, torch.float32) for s in style_images]
    with autocast(device, settings.precision):
        criterion.set_style(styles, style_blend)
    start = time.perf_counter()
    result = VideoResult(inputs.count, store.passes, 0, store.resume_point(), 0.0)
    first_pass, first_step = result.resumed_at
    for k in range(first_pass, store.passes):
        direction = store.directions[k]
        s0 = first_step if k == first_pass else 0
        kept: dict[int, torch.Tensor] = {}  # frame index -> stylized frame of this pass, as stored
        for j in range(1, max(video.offsets) + 1):
            if s0 - j >= 0:
                frame = store.frame_at(k, s0 - j)
                kept[frame] = store.load(k, frame).to(device)
        flows.prefetch(_pairs(store, k, range(s0, min(s0 + PREFETCH_AHEAD, inputs.count)), video.offsets))
        with store.writer(k, s0, fps, inputs.size) as writer:
            for s in range(s0, inputs.count):
                if stop_after is not None and result.computed >= stop_after:
                    break
                flows.prefetch(_pairs(store, k, [s + PREFETCH_AHEAD], video.offsets))
                t = store.frame_at(k, s)
                record, image = _frame(inputs, criterion, flows, store, kept, settings, video, rec, styles,
                                       style_blend, k, s, t, direction)
                writer.write(image)
                kept[t] = image
                kept.pop(t - direction * max(video.offsets), None)
                result.computed += 1
                result.records.append(record)
                if on_frame is not None:
                    on_frame(record)
        if stop_after is not None and result.computed >= stop_after:
            break
    result.seconds = time.perf_counter() - start
    return result


def _pairs(store: PassFolders, k: int, steps: Sequence[int], offsets: Sequence[int]) -> list[tuple[int, int]]:
    """Flow pairs (t, neighbour) the given steps of pass ``k`` will ask for."""
    pairs = []
    for s in steps:
        if 0 <= s < store.frames:
            t = store.frame_at(k, s)
            pairs += [(t, store.frame_at(k, s - j)) for j in offsets if s - j >= 0]
    return pairs


def _frame(inputs, criterion, flows, store, kept, settings, video, rec, styles, blend, k, s, t, direction):
    """Optimise frame ``t`` (step ``s`` of pass ``k``); returns its record and the stored image."""
    device = criterion.device
    tic = time.perf_counter()
    waited = 0.0
    content = inputs.frame(t).to(device)
    previous = t - direction if s > 0 else None

    cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    checked: dict[int, torch.Tensor] = {}

    def flow_and_mask(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The flow of t towards n and its reliability mask (Ruder's), each asked of the cache once per frame."""
        nonlocal waited
        if n not in cache:
            before = time.perf_counter()
            cache[n] = flows.flow(t, n).to(device), flows.mask(t, n).to(device)
            waited += time.perf_counter() - before
        return cache[n]

    def reliable(n: int) -> torch.Tensor:
        """The mask the method uses: ``consistent`` also drops the pixels the photometric check rejects."""
        flow, mask = flow_and_mask(n)
        if rec.masked and video.photometric > 0:
            if n not in checked:
                wrong = photometric_mismatch(content, inputs.frame(n).to(device), flow, video.photometric)
                checked[n] = mask * (~wrong).float()
            mask = checked[n]
        return mask

    def warped(n: int) -> torch.Tensor:
        return warp(kept[n], flow_and_mask(n)[0])

    with autocast(device, settings.precision):
        if rec.previous_as_style:
            criterion.set_style(*(([kept[previous]], None) if previous is not None else (styles, blend)))
        targets = criterion.content_targets(content) if criterion.enabled("content") else None

    target = mask = None
    if k == 0 and s == 0:
        x0 = initial_image(video.init, content, styles[0], video.seed)
    elif s == 0:
        x0 = store.load(k - 1, t).to(device)
    elif k > 0:
        x0 = blended_init(warped(previous), reliable(previous), store.load(k - 1, t).to(device), video.blend)
    elif rec.warped_init:
        x0 = filled_init(warped(previous), reliable(previous), content) if rec.masked else warped(previous)
    else:
        x0 = content
    if rec.temporal_loss and previous is not None:
        if rec.masked:
            neighbours = [t - direction * j for j in video.offsets if t - direction * j in kept]
            reduced = long_term_masks([reliable(n) for n in neighbours])
            target, mask = combine_targets([warped(n) for n in neighbours], reduced)
        else:
            target = warped(previous)

    budget = settings.iterations
    if s == 0 and k == 0:
        budget = video.first_frame_iterations or 2 * settings.iterations
    loop = PixelOptimizer(dataclasses.replace(settings, iterations=budget))
    image, history, count, reason = loop.run(
        x0, lambda x: criterion(x, targets, temporal_target=target, temporal_mask=mask)
    )
    if not bool(torch.isfinite(image).all()):
        raise NSTError(f"frame {t} diverged; lower loss.style_weight or loss.temporal_weight")
    image = quantized(image)
    error = math.nan
    if previous is not None:
        flow, ruder = flow_and_mask(previous)  # E_t on Ruder's masks, as for every method
        error = float(frame_warping_error(kept[previous], image, flow, ruder)[0])
    losses = {name: values[loop.best] for name, values in history.items()}  # those of the image kept
    seconds = time.perf_counter() - tic
    return FrameRecord(k, s, t, losses, count, reason, seconds, waited, error), image
