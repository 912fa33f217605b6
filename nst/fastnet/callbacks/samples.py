"""Lightning callback of a training run: grids of sample images (stylized, noisy input, difference) logged
to the run folder and to W&B (Lightning's guidance: logging lives in callbacks).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from PIL import Image, ImageDraw, ImageFont
from torch import nn
from torchvision.utils import make_grid

from nst.errors import NSTError
from nst.fastnet.data import photo_batch
from nst.fastnet.noise import PROBE_PIXELS, PROBE_RANGE, probe_noise
from nst.io.image import pil_to_tensor, save_image, tensor_to_pil


@torch.no_grad()
def sample_grid(
    net: nn.Module,
    images: torch.Tensor,
    noise: torch.Tensor,
    diff_gain: float = 10.0,
    extra_rows: Sequence[Sequence[torch.Tensor]] = (),
) -> torch.Tensor:
    """A (3, H, W) grid showing what the network does and how much it pops (Rainy & de Berker 2018).

    Row 1: the inputs. Row 2: their stylizations. Row 3, for the first input: input + noise,
    stylize(input), stylize(input + noise), and |difference| x ``diff_gain`` (black = stable).
    ``noise`` is (1, 3, H, W), added to the first image. ``extra_rows``: more rows of (3, H, W) tiles, e.g. the
    temporal row of :meth:`nst.fastnet.callbacks.consistency.ConsistencyProbe.sample_row`.
    """
    stylized = net(images).float()
    noisy_input = (images[:1] + noise).clamp(0, 1)
    noisy_output = net(noisy_input).float()
    diff = ((stylized[:1] - noisy_output).abs().mean(1, keepdim=True) * diff_gain).clamp(0, 1).expand(-1, 3, -1, -1)
    columns = max(len(images), 4)
    blank = torch.ones_like(images[:1])

    def row(tiles: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [*tiles, *([blank[0]] * (columns - len(tiles)))]

    tiles = [
        *row(list(images.float())),
        *row(list(stylized)),
        *row([noisy_input[0], stylized[0], noisy_output[0], diff[0]]),
        *(tile for extra in extra_rows for tile in row(list(extra))),
    ]
    return make_grid(torch.stack([t.cpu() for t in tiles]), nrow=columns, padding=2, pad_value=1.0)


@torch.no_grad()
def style_rows(net: nn.Module, images: torch.Tensor) -> list[tuple[list[torch.Tensor], list[str]]]:
    """For a multi-style network (Dumoulin et al. 2017), one (tiles, labels) row per style after the first,
    which :func:`sample_grid`'s "stylized" row shows; nothing for a single-style network."""
    styles = list(getattr(net, "styles", []))
    if len(styles) < 2:
        return []
    return [(list(net(images, style=i).float()), [name]) for i, name in enumerate(styles) if i > 0]


def label_grid(
    grid: torch.Tensor,
    tile_height: int,
    tile_width: int,
    diff_gain: float = 10.0,
    extra_labels: Sequence[Sequence[str]] = (),
) -> Image.Image:
    """The grid of :func:`sample_grid` as a PIL image with a small label in the corner of the key tiles,
    so a saved PNG explains itself."""
    image = tensor_to_pil(grid)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(8, min(tile_height, tile_width) // 16))
    labels = {
        (0, 0): "input",
        (1, 0): "stylized",
        (2, 0): "input + noise",
        (2, 1): "stylized",
        (2, 2): "stylized (noisy input)",
        (2, 3): f"|difference| x{diff_gain:g}",
    }
    labels |= {(3 + r, c): text for r, texts in enumerate(extra_labels) for c, text in enumerate(texts)}
    for (row, col), text in labels.items():
        x, y = 2 + col * (tile_width + 2) + 2, 2 + row * (tile_height + 2) + 2
        box = draw.textbbox((x, y), text, font=font)
        draw.rectangle((box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1), fill=(0, 0, 0))
        draw.text((x, y), text, fill=(255, 255, 255), font=font)
    return image


class SampleImages(Callback):
    """Every ``every_n_steps`` steps (and at the end), a grid of stylized images (:func:`sample_grid`), saved
    as ``<dirpath>/step_XXXXXXX.png`` and logged to W&B when that logger is on.

    The images are the validation images, or the user's own ``paths`` (files or folders), resized and
    centre-cropped to ``image_size`` (default: the data's); either way the same ones for the whole run, so
    grids compare from step to step. The noisy example uses the fixed probe noise of :mod:`nst.fastnet.noise`
    (1000 pixels, +-30), so grids of runs with different ``noise.*`` settings compare directly.
    """

    def __init__(
        self,
        dirpath: str | os.PathLike,
        every_n_steps: int = 500,
        max_images: int = 4,
        diff_gain: float = 10.0,
        paths: Sequence[str | os.PathLike] | str | None = None,
        image_size: int | None = None,
    ) -> None:
        if every_n_steps < 1 or max_images < 1:
            raise NSTError(
                f"callbacks.sample_images: every_n_steps={every_n_steps} and max_images={max_images} must be >= 1"
            )
        self.paths = [Path(p).expanduser() for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths or [])]
        missing = [p for p in self.paths if not p.exists()]
        if missing:
            raise NSTError(f"callbacks.sample_images.paths: no such image or folder {missing[0]}; fix the path")
        self.image_size = image_size
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.max_images = max_images
        self.diff_gain = diff_gain
        self.saved: list[Path] = []
        self._images: torch.Tensor | None = None
        self._last_step = -1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self.log_samples(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.log_samples(trainer, pl_module)

    def log_samples(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Path | None:
        """Write (and log) the grid for the current step on rank 0; once per step."""
        step = trainer.global_step
        if not trainer.is_global_zero or step == self._last_step:
            return None
        images = self._sample_inputs(trainer)
        if images is None:
            return None
        self._last_step = step
        net = getattr(pl_module, "net", pl_module)
        images = images.to(pl_module.device)
        noise = probe_noise((1, *images.shape[1:]), seed="samples", device=pl_module.device)
        was_training = net.training
        net.eval()
        try:  # a multi-style network adds a row per further style; the consistency probe a temporal row
            rows = style_rows(net, images)
            rows += [c.sample_row(net, *images.shape[-2:]) for c in trainer.callbacks if hasattr(c, "sample_row")]
            grid = sample_grid(net, images, noise, self.diff_gain, extra_rows=[tiles for tiles, _ in rows])
        finally:
            net.train(was_training)
        labels = [texts for _, texts in rows]
        labelled = label_grid(grid, *images.shape[-2:], diff_gain=self.diff_gain, extra_labels=labels)
        path = save_image(pil_to_tensor(labelled), self.dirpath / f"step_{step:07d}.png")
        self.saved.append(path)
        caption = (
            f"step {step}. rows: inputs | stylized | first input with noise ({PROBE_PIXELS} px, +-{PROBE_RANGE}), "
            f"stylized clean, stylized noisy, |difference| x{self.diff_gain:g}"
            + "".join(f" | {', '.join(texts)}" for texts in labels)
        )
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):  # log_image exists on this logger only
                logger.log_image(key="samples", images=[labelled], step=step, caption=[caption])
        return path

    def _sample_inputs(self, trainer: L.Trainer) -> torch.Tensor | None:
        if self._images is None:
            datamodule = trainer.datamodule
            if self.paths:
                size = self.image_size or datamodule.hparams.image_size
                images = photo_batch(self.paths, size)
            else:
                images = datamodule.val_images() if hasattr(datamodule, "val_images") else None
            if images is None or len(images) == 0:
                warnings.warn("no validation images (data.num_val=0): sample grids are not written", stacklevel=2)
                images = torch.empty(0)
            self._images = images[: self.max_images]
        return self._images if len(self._images) else None


