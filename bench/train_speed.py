"""Training seconds per step of the fast style network: our Lightning loop against a textbook loop.

    python bench/train_speed.py                   # 256x256, batch 4, on the current device
    python bench/train_speed.py --batch 16 --compile

The baseline is a plain loop in the style of pytorch/examples' fast_neural_style (Johnson et al. 2016):
the same TransformerNet and VGG-19 (random weights: no download), Adam, ``vgg(y)`` and ``vgg(x)`` for all
four style layers, content + style, ``.item()`` on the losses every step, no framework. Our loop is
``train.py``'s assembly (config, DataModule, callbacks, CSV logger, Trainer), with the noise stability term
off (``noise.pixels=0``) and on (``noise.pixels=1000``: the clean and noisy batches share one forward,
so the network does twice the work). Both read the same generated JPEGs through the same DataLoader.

Per-step time is the median interval between consecutive step ends after warm-up, so data loading,
logging and callback overhead are included on both sides. On CUDA both sides run bf16 autocast and
channels_last (our ``trainer=gpu``), and the time of one pass over 63k images is projected.
Targets (issue #5): CPU <= 1.1x the baseline with the noise term off, <= 1.4x with it on;
H100: one pass over 63k images at 256 px in under 10 minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nst.app.builders import build_module  # noqa: E402
from nst.app.config import CONF_DIR, build, plain  # noqa: E402
from nst.encoders.vgg import VGGFeatures  # noqa: E402
from nst.fastnet.callbacks.loggers import build_loggers  # noqa: E402
from nst.fastnet.data import StyleDataModule  # noqa: E402
from nst.fastnet.module import seed_training  # noqa: E402
from nst.fastnet.transformer_net import TransformerNet  # noqa: E402
from nst.io.image import load_image  # noqa: E402
from nst.losses import content_loss, gram_matrix, style_loss  # noqa: E402

STYLE_LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
CONTENT_LAYER = "relu3_3"
EPOCH_IMAGES = 63_000


def make_images(root: Path, n: int, size: int) -> Path:
    """Smooth random JPEGs a bit larger than the crop, so resizing and cropping do real work."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        coarse.resize((size * 5 // 4, size * 9 // 8), Image.BILINEAR).save(root / f"{i:03d}.jpg", quality=90)
    return root


def step_times(stamps: list[float], warmup: int) -> float:
    intervals = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :])]
    return statistics.median(intervals)


def baseline(args: argparse.Namespace, images: Path, device: torch.device) -> float:
    """A textbook fast_neural_style training loop, no framework."""
    torch.manual_seed(0)
    data = StyleDataModule("folder", str(images), args.size, args.batch, args.workers, num_val=0, verify_images=False)
    data.setup("fit")
    net = TransformerNet().to(device)
    vgg = VGGFeatures(STYLE_LAYERS, weights="random").to(device)
    cuda = device.type == "cuda"
    if cuda:
        net, vgg = net.to(memory_format=torch.channels_last), vgg.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    style = load_image(Path(CONF_DIR.parent, "assets", "styles", "udnie.jpg"), max_size=args.size).to(device)
    with torch.no_grad():
        target_grams = {k: gram_matrix(v) for k, v in vgg(style).items()}
    stamps = []
    steps = args.warmup + args.steps + 1
    while len(stamps) < steps:
        for x in data.train_dataloader():
            x = x.to(device, non_blocking=True)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                y = net(x)
                features_y, features_x = vgg(y), vgg(x)
                content = content_loss(features_y[CONTENT_LAYER], features_x[CONTENT_LAYER])
                style_term = style_loss({k: gram_matrix(v) for k, v in features_y.items()}, target_grams)
                total = content + 1e6 * style_term
            total.backward()
            optimizer.step()
            _ = content.item() + style_term.item()  # the example accumulates both for its log line
            stamps.append(time.perf_counter())
            if len(stamps) == steps:
                break
    return step_times(stamps, args.warmup)


class StepClock(Callback):
    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()  # the baseline's .item() synchronises too
        self.stamps.append(time.perf_counter())


def ours(args: argparse.Namespace, images: Path, out: Path, device: torch.device, noise_pixels: int) -> float:
    """train.py's assembly, timed per step."""
    cuda = device.type == "cuda"
    overrides = [
        "data=folder",
        f"data.root={images}",
        f"data.image_size={args.size}",
        f"data.batch_size={args.batch}",
        f"data.num_workers={args.workers}",
        "data.num_val=0",
        "data.verify_images=false",
        "vgg.weights=random",
        f"noise.pixels={noise_pixels}",
        f"trainer={'gpu' if cuda else 'cpu'}",
        f"model.compile={str(args.compile).lower()}",
        f"trainer.max_steps={args.warmup + args.steps + 1}",
        "trainer.val_check_interval=100000",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "callbacks.export_weights=null",
        "logger=csv",
        f"paths.output_dir={out}",
    ]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    seed_training(0)
    clock = StepClock()
    callbacks = [build(c) for c in cfg.callbacks.values() if c is not None] + [clock]
    trainer = build(cfg.trainer, logger=build_loggers(plain(cfg.logger), out), callbacks=callbacks)
    trainer.fit(build_module(cfg), datamodule=build(cfg.data))
    return step_times(clock.stamps, args.warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="timed steps (after warm-up)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 0 on CPU, 8 on GPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile our network (GPU)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.workers is None:
        args.workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0
    warnings.filterwarnings("ignore")
    torch.set_float32_matmul_precision("high")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; {args.size}x{args.size}, batch {args.batch}, "
          f"{args.steps} timed steps, {args.warmup} warm-up")
    with tempfile.TemporaryDirectory() as tmp:
        n_images = max(16, args.batch * (args.warmup + args.steps + 2))
        images = make_images(Path(tmp, "images"), n=n_images, size=args.size)
        base = baseline(args, images, device)
        off = ours(args, images, Path(tmp, "off"), device, noise_pixels=0)
        on = ours(args, images, Path(tmp, "on"), device, noise_pixels=1000)
    print(f"{'loop':<34}{'s/step':>9}{'x baseline':>12}{'target':>9}")
    for label, seconds, target in (
        ("baseline (fast_neural_style)", base, ""),
        ("ours, noise off", off, "<= 1.1"),
        ("ours, noise on (1000 px)", on, "<= 1.4"),
    ):
        print(f"{label:<34}{seconds:>9.3f}{seconds / base:>12.2f}{target:>9}")
    if device.type == "cuda":
        for label, seconds in (("noise off", off), ("noise on", on)):
            minutes = seconds * EPOCH_IMAGES / args.batch / 60
            print(f"one pass over {EPOCH_IMAGES} images, {label}: {minutes:.1f} min (target < 10)")


if __name__ == "__main__":
    main()
