"""Temporal consistency measured while training: a Lightning callback that stylizes a fixed short clip.

Every validation the network stylizes the same few frames (the bundled Sintel clip by default) and logs the
foundation's metrics (:mod:`nst.metrics`, definitions pinned there) next to the losses:

* ``val/warp_error``: E_warp of the stylized clip (Lai et al. 2018), flows and masks from the *input* frames;
* ``val/warp_error_input``: the same number for the input clip, the reference (constant over a run);
* ``val/style_distance`` and ``val/content_distance``: Gram distance to the style image (relu1_1..relu5_1) and
  relu4_2 change against the input, so a run cannot "win" on consistency by giving up the style. They are
  measured on the run's own encoder (VGG-19 or VGG-16, ``vgg.arch`` with ``vgg.weights``), named once on stdout
  and in the loggers' hyperparameters as ``metrics/encoder`` (``vgg16:hed``).

The consistency curve then sits beside the style curve for every run of a sweep. It also gives the sample grid
of :class:`~nst.fastnet.callbacks.samples.SampleImages` a temporal row (:meth:`ConsistencyProbe.sample_row`): two
consecutive stylized frames and their warped difference.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn

from nst.encoders.vgg import encoder_spec
from nst.errors import NSTError
from nst.flow import FlowEstimator, warp
from nst.flow.opencv import DISFlow
from nst.io.image import fit_long_side
from nst.io.video import open_video
from nst.losses import StyleTransferCriterion
from nst.metrics import flow_and_mask, frame_warping_error, metric_criterion, style_content_distance


def fit_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Frames (B, 3, h, w) scaled to cover (height, width) (aspect kept, antialiased), centre-cropped to it."""
    scale = max(height / frames.shape[-2], width / frames.shape[-1])
    size = (max(height, round(frames.shape[-2] * scale)), max(width, round(frames.shape[-1] * scale)))
    if size != tuple(frames.shape[-2:]):
        frames = F.interpolate(frames, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return frames[..., top : top + height, left : left + width].contiguous()


class ConsistencyProbe(Callback):
    """Logs ``val/warp_error``, ``val/warp_error_input``, ``val/style_distance`` and ``val/content_distance`` of
    the network on a fixed clip at the end of every validation (sanity checks excluded).

    Args:
        clip: a video file, GIF or frame folder (read with :func:`nst.io.video.open_video`).
        max_frames, start, every: which frames (a few are enough: E_warp is a mean over pairs).
        size: the long side the frames are scaled to (aspect kept); small keeps validation cheap.
        vgg_weights: the weights of the metric's encoder (``imagenet`` | ``random`` | ``hed`` | a path), as
            ``vgg.weights``.
        flow: the estimator of the input flows (default OpenCV DIS ``medium``, as :mod:`nst.metrics`).
        diff_gain: the gain of the difference tile in the sample grid's temporal row.
        vgg_arch: the encoder's architecture, as ``vgg.arch`` (``vgg19`` | ``vgg16``; default: vgg16 for
            ``hed``, else vgg19).
    """

    def __init__(
        self,
        clip: str | os.PathLike,
        max_frames: int = 8,
        start: int = 0,
        every: int = 1,
        size: int = 128,
        vgg_weights: str = "imagenet",
        flow: FlowEstimator | None = None,
        diff_gain: float = 10.0,
        vgg_arch: str | None = None,
    ) -> None:
        if max_frames < 2 or size < 32:
            raise NSTError(f"callbacks.consistency: max_frames={max_frames} must be >= 2 and size={size} >= 32")
        self.clip = Path(clip).expanduser()
        self.max_frames, self.start, self.every, self.size = max_frames, start, every, size
        self.vgg_arch, self.vgg_weights = encoder_spec(vgg_weights, vgg_arch)
        self.flow = flow or DISFlow()
        self.diff_gain = diff_gain
        self.last: dict[str, float] = {}  #: the metrics of the last validation
        self._frames: torch.Tensor | None = None
        self._flows: tuple[torch.Tensor, torch.Tensor] | None = None
        self._criterion: StyleTransferCriterion | None = None
        self._row_inputs: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def frames(self) -> torch.Tensor:
        """The clip's selected frames, (T, 3, H, W) in [0, 1], long side ``size``; read once."""
        if self._frames is None:
            with open_video(self.clip, start=self.start, max_frames=self.max_frames, every=self.every) as reader:
                frames = torch.cat(list(reader))
            if len(frames) < 2:
                raise NSTError(f"callbacks.consistency.clip {self.clip} has {len(frames)} frame(s); E_warp needs 2")
            self._frames = fit_frames(frames, *fit_long_side(*frames.shape[-2:], self.size))
        return self._frames

    def flows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward flows (T-1, 2, H, W) and reliability masks (T-1, 1, H, W) of the input frames; computed once."""
        if self._flows is None:
            frames = self.frames()
            pairs = [flow_and_mask(frames[t - 1 : t], frames[t : t + 1], self.flow) for t in range(1, len(frames))]
            self._flows = torch.cat([f for f, _ in pairs]), torch.cat([m for _, m in pairs])
        return self._flows

    @torch.no_grad()
    def measure(self, net: nn.Module, style_images: list[torch.Tensor], blend: list[float] | None = None) -> dict:
        """The four metrics of ``net`` on the clip (``net`` in eval mode, on its own device)."""
        device = next(net.parameters()).device
        frames, (flows, masks) = self.frames().to(device), self.flows()
        outputs = torch.cat([net(chunk).float().clamp(0, 1) for chunk in frames.split(4)])
        criterion = self._metric_criterion(style_images, blend, device)
        style, content = style_content_distance(outputs, frames, criterion)  # batch means = means over frames
        return {
            "val/warp_error": float(frame_warping_error(outputs[:-1], outputs[1:], flows, masks).mean()),
            "val/warp_error_input": float(frame_warping_error(frames[:-1], frames[1:], flows, masks).mean()),
            "val/style_distance": style,
            "val/content_distance": content,
        }

    def _metric_criterion(
        self, style_images: list[torch.Tensor], blend: list[float] | None, device: torch.device
    ) -> StyleTransferCriterion:
        if self._criterion is None:
            long_side = max(self.frames().shape[-2:])
            styles = [fit_frames(s, *fit_long_side(*s.shape[-2:], long_side)) for s in style_images]
            self._criterion = metric_criterion(self.vgg_weights, device, self.vgg_arch)
            print(f"consistency probe: style and content distances on {self.encoder} features", flush=True)
            self._criterion.set_style([s.to(device) for s in styles], blend)
        return self._criterion.to(device)

    @property
    def encoder(self) -> str:
        """The label of the metric encoder, ``arch:weights`` (``vgg16:hed``)."""
        return f"{self.vgg_arch}:{self.vgg_weights}"

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:  # W&B's config and the CSV logger's hparams.yaml name the metric encoder
            logger.log_hyperparams({"metrics/encoder": self.encoder})

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        net = getattr(pl_module, "net", pl_module)
        was_training = net.training
        net.eval()
        try:
            # a multi-style network paints its first style when called without one: score that style
            styles = list(pl_module.style_images)[: 1 if len(getattr(net, "styles", [])) > 1 else None]
            self.last = self.measure(net, styles, pl_module.hparams.get("style_blend"))
        finally:
            net.train(was_training)
        pl_module.log_dict(self.last, on_step=False, on_epoch=True, batch_size=1, sync_dist=True)  # same on all ranks

    @torch.no_grad()
    def sample_row(self, net: nn.Module, height: int, width: int) -> tuple[list[torch.Tensor], list[str]]:
        """Tiles of size (height, width) for the sample grid, and their labels: the middle input frame t,
        stylized t-1, stylized t, and |stylized t - warp(stylized t-1)| x ``diff_gain`` over reliable pixels."""
        if (height, width) not in self._row_inputs:
            frames = self.frames()
            t = len(frames) // 2
            pair = fit_frames(frames[t - 1 : t + 1], height, width)
            flow, mask = flow_and_mask(pair[:1], pair[1:], self.flow)
            self._row_inputs[(height, width)] = pair, flow, mask
        pair, flow, mask = self._row_inputs[(height, width)]
        device = next(net.parameters()).device
        out = net(pair.to(device)).float().clamp(0, 1).cpu()
        diff = (out[1:] - warp(out[:1], flow)).abs().mean(1, keepdim=True) * mask * self.diff_gain
        tiles = [pair[1], out[0], out[1], diff.clamp(0, 1).expand(-1, 3, -1, -1)[0]]
        return tiles, ["clip frame t", "stylized t-1", "stylized t", f"|t - warp(t-1)| x{self.diff_gain:g}"]
