"""Video metrics: temporal consistency (E_warp), style distance and content distance, streamed frame by frame.

Definitions, pinned (absolute E_warp values differ by 10x between codebases, so ours says exactly what it is):

* **E_warp** (Lai et al. 2018, "warping error"): for frames t = 1..T-1,
  ``E_t = sum(M * (O_t - warp(O_{t-1}, F_t))^2) / (3 * sum(M))`` and E_warp is the mean of E_t.
  O are the RGB frames in [0, 1] (float32, no gamma change) at the evaluation size; F_t is the backward
  flow of frame t (towards t-1) computed on the **input** frames, by OpenCV DIS ``medium`` on gray uint8
  frames unless another estimator is named; ``warp`` is the bilinear backward warp of :mod:`nst.flow`;
  M (H x W, 0/1) is :func:`nst.flow.reliability_mask` of F_t and the input's forward flow of t-1: the
  forward-backward check |w_f + w_b|^2 > 0.01(|w_f|^2 + |w_b|^2) + 0.5, motion boundaries
  |grad u|^2 + |grad v|^2 > 0.01|w|^2 + 0.002 and pixels flowing out of the frame are excluded. The sum runs
  over pixels and the 3 channels; a frame with no reliable pixel scores 0. The same number for the input
  video (O = input) is the reference: a stylized video cannot be expected to beat the flow's own error.
* **style distance**: per output frame, the mean over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (equal
  weights) of the mean squared difference between its Gram matrices and the style image's, Gram =
  F F^T / (C H W) (:func:`nst.losses.gram_matrix`), through :class:`nst.losses.StyleTransferCriterion`;
  the style image is scaled so its long side equals the frames' long side (a blend of style images: against the
  blend-weighted mean of their Gram matrices, the optimisers' own target). Reported: the mean over frames.
* **content distance**: per frame, the mean squared difference of relu4_2 features of the output and input
  frame (:func:`nst.losses.content_loss`); mean over frames.
* Both distances are of one encoder, VGG-19 or VGG-16, named in reports as ``arch:weights`` (``vgg16:hed``).

The maths only: tensors in, numbers out. The command (``python -m nst.evaluation.measure``, or as before
``python -m nst.metrics``), its table and metrics.json live in :mod:`nst.evaluation.measure`.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

from nst.encoders.vgg import VGGFeatures, encoder_spec
from nst.errors import NSTError
from nst.flow import FlowEstimator, reliability_mask, warp
from nst.flow.opencv import DISFlow
from nst.losses import StyleTransferCriterion

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"


@dataclass(frozen=True)
class FrameScores:
    """A per-frame score and its mean over frames."""

    mean: float
    per_frame: list[float]

    @classmethod
    def of(cls, values: Sequence[float]) -> FrameScores:
        return cls(sum(values) / len(values) if values else math.nan, list(values))


def frame_warping_error(
    previous: torch.Tensor, current: torch.Tensor, flow: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """E_t of each image in a batch, (B,): sum(M (O_t - warp(O_{t-1}, flow))^2) / (3 sum M); 0 if sum M = 0."""
    warped = warp(previous.float(), flow.to(previous.device))
    mask = mask.to(current.device).float()
    sq = (current.float() - warped).pow(2) * mask
    reliable = mask.sum(dim=(1, 2, 3)) * current.shape[1]
    return torch.where(reliable > 0, sq.sum(dim=(1, 2, 3)) / reliable.clamp_min(1), torch.zeros_like(reliable))


def flow_and_mask(
    previous_input: torch.Tensor, current_input: torch.Tensor, estimator: FlowEstimator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The backward flow of the current input frame and its reliability mask (both from the input frames)."""
    backward = estimator(current_input, previous_input)
    forward = estimator(previous_input, current_input)
    return backward, reliability_mask(backward, forward)


def warping_error(
    inputs: Iterable[torch.Tensor],
    outputs: Iterable[torch.Tensor] | None = None,
    estimator: FlowEstimator | None = None,
) -> FrameScores:
    """E_warp of ``outputs`` with flows and masks from ``inputs`` (module docstring); streamed, memory flat.

    Without ``outputs`` it is the input's own E_warp, the reference. Frames are (1, 3, H, W) in [0, 1].
    """
    same = outputs is None
    steps = _warp_steps(inputs, inputs if same else outputs, estimator or DISFlow(), same)
    return FrameScores.of([e_out for _, _, _, e_out in steps][1:])


def metric_criterion(
    vgg_weights: str = "imagenet", device: torch.device | str = "cpu", arch: str | None = None
) -> StyleTransferCriterion:
    """The shared criterion measuring style (relu1_1..relu5_1, equal weights) and content (relu4_2) distances.

    Its encoder: ``arch`` with ``vgg_weights``, or a label ``vgg16:hed`` (:func:`nst.encoders.vgg.encoder_spec`),
    named by ``criterion.encoder.label``. Set its style (``criterion.set_style``) before measuring.
    """
    arch, weights = encoder_spec(vgg_weights, arch)
    encoder = VGGFeatures([CONTENT_LAYER, *STYLE_LAYERS], weights=weights, arch=arch)
    criterion = StyleTransferCriterion(
        encoder, content_layers=[CONTENT_LAYER], style_layers=STYLE_LAYERS, content_weight=1.0, style_weight=1.0
    )
    return criterion.to(device)


@torch.no_grad()
def style_content_distance(
    output: torch.Tensor, input: torch.Tensor, criterion: StyleTransferCriterion
) -> tuple[float, float]:
    """(style distance, content distance) of one output frame, as defined in the module docstring."""
    device = criterion.encoder.mean.device
    terms = criterion(output.to(device), criterion.content_targets(input.to(device)))
    return float(terms["style"]), float(terms["content"])


@dataclass(frozen=True)
class VideoMetrics:
    """Everything :func:`evaluate_video` measures; ``ratio`` is E_warp(output) / E_warp(input)."""

    warp_error_input: FrameScores
    warp_error_output: FrameScores
    style_distance: FrameScores
    content_distance: FrameScores

    @property
    def ratio(self) -> float:
        reference = self.warp_error_input.mean
        return self.warp_error_output.mean / reference if reference > 0 else math.nan


def evaluate_video(
    inputs: Iterable[torch.Tensor],
    outputs: Iterable[torch.Tensor],
    criterion: StyleTransferCriterion,
    estimator: FlowEstimator | None = None,
) -> VideoMetrics:
    """All metrics in one pass: flows once per pair, one VGG pass per frame; memory stays flat.

    ``criterion`` comes from :func:`metric_criterion`, with its style set.
    """
    rows = [
        (e_in, e_out, *style_content_distance(o, x, criterion))
        for x, o, e_in, e_out in _warp_steps(inputs, outputs, estimator or DISFlow())
    ]
    e_in, e_out, style, content = (list(column) for column in zip(*rows, strict=True))
    return VideoMetrics(*(FrameScores.of(v) for v in (e_in[1:], e_out[1:], style, content)))


def _warp_steps(
    inputs: Iterable[torch.Tensor], outputs: Iterable[torch.Tensor], estimator: FlowEstimator, same: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor, float, float]]:
    """(input, output, E_t of the input, E_t of the output) per frame; frame 0 scores nan."""
    previous: tuple[torch.Tensor, torch.Tensor] | None = None
    frames = 0
    for x, o in _paired(inputs, outputs, same):
        frames += 1
        e_in = e_out = math.nan
        if previous is not None:
            flow, mask = flow_and_mask(previous[0], x, estimator)
            e_in = float(frame_warping_error(previous[0], x, flow, mask)[0])
            e_out = e_in if same else float(frame_warping_error(previous[1], o, flow, mask)[0])
        previous = (x, o)
        yield x, o, e_in, e_out
    if frames < 2:
        raise NSTError(f"E_warp needs at least 2 frames, got {frames}")


def _paired(
    inputs: Iterable[torch.Tensor], outputs: Iterable[torch.Tensor], same: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if same:
        yield from ((x, x) for x in inputs)
        return
    end = object()
    for i, (x, o) in enumerate(itertools.zip_longest(inputs, outputs, fillvalue=end)):
        if x is end or o is end:
            longer = "output" if x is end else "input"
            raise NSTError(f"the {longer} video has more frames than the other ({i}); use max_frames={i}")
        if x.shape != o.shape:
            raise NSTError(f"frame {i}: input {tuple(x.shape)} and output {tuple(o.shape)} differ in size")
        yield x, o


if __name__ == "__main__":  # the old command, kept: the command line lives in nst/evaluation/measure.py
    from nst.evaluation.measure import main

    sys.exit(main())
