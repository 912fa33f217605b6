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

Run ``python -m nst.metrics input=clip.mp4 output=stylized.mp4 style.image=painting.jpg`` (see :func:`main`).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from nst.encoders.vgg import VGGFeatures, encoder_spec
from nst.errors import NSTError
from nst.flow import FlowEstimator, reliability_mask, warp
from nst.flow.named import build_estimator
from nst.flow.opencv import DISFlow
from nst.io.files import atomic_path
from nst.io.image import load_style_images
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


# The command line: python -m nst.metrics key=value ... (tiny and strict; no Hydra). Required: input, output,
# style.image (a blend: [a.jpg,b.jpg] with style.blend=[w1,w2]); vgg.arch (default vgg16 for hed, else vgg19),
# vgg.weights (imagenet|random|hed|PATH), flow (dis|farneback|raft), flow.weights (raft: DEFAULT|PATH), max_size
# (long side; default the output's), max_frames, json (default: metrics.json next to the output).
KEYS = ("input", "output", "style.image", "style.blend", "vgg.arch", "vgg.weights", "flow", "flow.weights",
        "max_size", "max_frames", "json")
TABLE = ("E_warp input", "E_warp output", "E_warp output/input", "style distance", "content distance")


def parse_args(argv: Sequence[str]) -> dict[str, str]:
    """``key=value`` pairs; unknown or repeated keys and missing required ones are one-line NSTErrors."""
    args: dict[str, str] = {}
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in KEYS or key in args:
            why = "is given twice" if key in args else "is not a key=value argument of nst.metrics"
            raise NSTError(f"{item!r} {why}; valid keys: {', '.join(f'{k}=' for k in KEYS)}")
        args[key] = value
    missing = [k for k in KEYS[:3] if not args.get(k)]
    if missing:
        raise NSTError(f"missing {', '.join(missing)}; usage: python -m nst.metrics input=clip.mp4 "
                       "output=stylized.mp4 style.image=painting.jpg")
    return args


def _positive_int(args: dict[str, str], key: str) -> int | None:
    value = args.get(key)
    if value is not None and not (value.isdigit() and int(value) > 0):
        raise NSTError(f"{key} must be a positive integer, got {value!r}")
    return None if value is None else int(value)


def _listed(args: dict[str, str], key: str, kind: type = str) -> list | None:
    """``key``'s value as a list of ``kind``: ``[a,b]`` as Hydra writes lists, or one value; None if not given."""
    value = args.get(key)
    try:
        return None if value is None else [kind(v) for v in (value[1:-1].split(",") if value[:1] == "[" else [value])]
    except ValueError:
        raise NSTError(f"{key} must be a number or a list of numbers ([0.7,0.3]), got {value!r}") from None


def _resized(frames: Iterable[torch.Tensor], size: tuple[int, int]) -> Iterator[torch.Tensor]:
    """Frames scaled (bilinear, antialiased) to ``size`` = (H, W) when they are not that size already."""
    for frame in frames:
        if tuple(frame.shape[-2:]) != size:
            frame = F.interpolate(frame, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        yield frame


def run(args: dict[str, str]) -> tuple[VideoMetrics, dict]:
    """Evaluate an output video against its input and the style image; write the JSON; return both.

    The evaluation size is the output's, its long side scaled down to ``max_size``; input frames are
    scaled to it, so an output made at a smaller size than its input is compared at the output's size.
    """
    max_size, max_frames = _positive_int(args, "max_size"), _positive_int(args, "max_frames")
    estimator = build_estimator(args.get("flow", "dis"), args.get("flow.weights"))
    from nst.io.video import open_video  # PyAV only for the command line

    with (
        open_video(args["input"], max_frames=max_frames) as inp,
        open_video(args["output"], max_frames=max_frames) as out,
    ):
        if abs(inp.width * out.height - out.width * inp.height) > 0.02 * out.width * inp.height:
            raise NSTError(f"input {args['input']} is {inp.width}x{inp.height} but output {args['output']} is "
                           f"{out.width}x{out.height}: not the same picture; compare a video with its own output")
        scale = min(1.0, max_size / max(out.width, out.height)) if max_size else 1.0
        size = (max(1, round(out.height * scale)), max(1, round(out.width * scale)))
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        criterion = metric_criterion(args.get("vgg.weights", "imagenet"), device, args.get("vgg.arch"))
        styles = [s.to(device) for s in load_style_images(_listed(args, "style.image"), max(size))]
        criterion.set_style(styles, _listed(args, "style.blend", float))
        metrics = evaluate_video(_resized(inp, size), _resized(out, size), criterion, estimator)
    report = {
        "input": args["input"], "output": args["output"], "style_image": args["style.image"],
        "style_blend": args.get("style.blend"),
        "width": size[1], "height": size[0], "frames": len(metrics.style_distance.per_frame),
        "flow": estimator.name, "encoder": criterion.encoder.label,
        "definition": "E_warp = mean_t sum(M*(O_t - W(O_t-1))^2) / (3*sum M), RGB in [0,1], flow on the input, "
                      "M = fw-bw check + motion boundaries + out of frame (Ruder 2016); see nst/metrics.py",
        "warp_error_ratio": None if math.isnan(metrics.ratio) else metrics.ratio,
        **{name: asdict(value) for name, value in vars(metrics).items()},
    }
    path = Path(args.get("json") or Path(args["output"]).parent / "metrics.json")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return metrics, {**report, "json": str(path)}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nst.metrics input=... output=... style.image=...``: print the table, write metrics.json."""
    try:
        metrics, report = run(parse_args(sys.argv[1:] if argv is None else argv))
    except NSTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{report['frames']} frames at {report['width']}x{report['height']}, flow {report['flow']}, "
          f"encoder {report['encoder']}")
    values = (metrics.warp_error_input.mean, metrics.warp_error_output.mean, metrics.ratio,
              metrics.style_distance.mean, metrics.content_distance.mean)
    for name, value in zip(TABLE, values, strict=True):
        print(f"{name:<22}{value:>12.4g}")
    print(f"wrote {report['json']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
