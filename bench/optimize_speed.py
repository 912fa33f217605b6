"""Speed of our Gatys loop: per iteration against the PyTorch tutorial, and coarse to fine against single scale.

    python bench/optimize_speed.py [--device auto|cpu|cuda] [--iters 6] [--rounds 2] [--threads N]
                                   [--pyramid-size 256] [--pyramid-iters 300] [--schedule 200,100,100 ...]
                                   [--skip-speed] [--skip-pyramid]
    python bench/optimize_speed.py --skip-speed --pyramid-size 1024     # the 1024 px pyramid figure (docs/speed.md)

1. Seconds per L-BFGS iteration (one loss evaluation), against the "Neural Transfer Using PyTorch" tutorial as
   published, on the same work: its ``get_style_model_and_losses`` with losses after the same layers (Table I
   of Gatys et al. 2016 in the tutorial's naming, where ``conv_i`` is the i-th convolution, before its ReLU:
   style conv_1, conv_3, conv_5, conv_9, conv_13, content conv_10), the model trimmed after the last loss
   module, eval mode, weights frozen (``model.requires_grad_(False)``), ``clamp_`` in the closure, torch's
   L-BFGS. Ours runs the same layers (conv1_1 ... conv5_1, conv4_2) at the same image size.
2. Coarse to fine (``pyramid.*``): wall time until a pyramid run reaches the final total loss of a single-scale
   run of ``--pyramid-iters`` L-BFGS iterations, at ``--pyramid-size`` px on the long side (Table I layers,
   post-ReLU, as optimize.py runs them), and the pyramid's own final loss after its budget.

Both use the same seeded random VGG weights (no download; speed does not depend on the weights). The
bundled photo is 451x300, so sizes above that use it upscaled. bf16 rows run only where
:func:`nst.app.device.check_precision` allows bf16 (GPUs, CPUs with native bf16).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nst.app.device import check_precision, resolve_device  # noqa: E402
from nst.encoders.layers import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from nst.encoders.vgg import VGGFeatures  # noqa: E402
from nst.errors import NSTError  # noqa: E402
from nst.gatys.loop import LoopSettings  # noqa: E402
from nst.gatys.pyramid import Pyramid, stylize_pyramid  # noqa: E402
from nst.io.image import load_image  # noqa: E402
from nst.losses import StyleTransferCriterion  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: Table I of Gatys et al. 2016 in the tutorial's names, and the same tensors in ours (pre-ReLU).
TUTORIAL_CONTENT, TUTORIAL_STYLE = ["conv_10"], ["conv_1", "conv_3", "conv_5", "conv_9", "conv_13"]
OURS_CONTENT, OURS_STYLE = ["conv4_2"], ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
#: Table I as optimize.py runs it (conf/loss/gatys.yaml: post-ReLU), for the pyramid comparison.
GATYS_CONTENT = ["block4_conv2"]
GATYS_STYLE = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
STYLE_WEIGHT = 1e9  # the random VGG has small activations; this gives losses of the usual size
SIZES = [(256, 256), (342, 512)]  # (H, W)
#: Coarse-to-fine schedules compared with single scale: iterations per level, coarse to fine (one level each).
SCHEDULES = ["200,100,100", "200,150"]


# --- the tutorial, as published: loss modules inserted after named layers, trimmed after the last one ---
class _ContentLoss(nn.Module):
    def __init__(self, target: torch.Tensor):
        super().__init__()
        self.target = target.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(x, self.target)
        return x


def _gram(x: torch.Tensor) -> torch.Tensor:
    a, b, c, d = x.size()
    feats = x.view(a * b, c * d)
    return torch.mm(feats, feats.t()).div(a * b * c * d)


class _StyleLoss(nn.Module):
    def __init__(self, target_feature: torch.Tensor):
        super().__init__()
        self.target = _gram(target_feature).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(_gram(x), self.target)
        return x


class _Normalization(nn.Module):
    def __init__(self, device: torch.device):
        super().__init__()
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(-1, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(-1, 1, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return (img - self.mean) / self.std


def tutorial_model(cnn: nn.Sequential, style: torch.Tensor, content: torch.Tensor):
    """The tutorial's ``get_style_model_and_losses`` with Table I's layers: ``conv_i`` counts convolutions."""
    model = nn.Sequential(_Normalization(content.device))
    content_losses, style_losses = [], []
    i = 0
    for layer in cnn.children():
        if isinstance(layer, nn.Conv2d):
            i += 1
            name = f"conv_{i}"
        elif isinstance(layer, nn.ReLU):
            name, layer = f"relu_{i}", nn.ReLU(inplace=False)
        else:
            name = f"pool_{i}"
        model.add_module(name, layer)
        if name in TUTORIAL_CONTENT:
            content_losses.append(_ContentLoss(model(content).detach()))
            model.add_module(f"content_loss_{i}", content_losses[-1])
        if name in TUTORIAL_STYLE:
            style_losses.append(_StyleLoss(model(style).detach()))
            model.add_module(f"style_loss_{i}", style_losses[-1])
    last = max(j for j, m in enumerate(model) if isinstance(m, (_ContentLoss, _StyleLoss)))
    return model[: last + 1], style_losses, content_losses  # trimmed after the deepest loss, as published


def tutorial_seconds(cnn: nn.Sequential, content: torch.Tensor, style: torch.Tensor, iters: int) -> float:
    """Seconds per evaluation of the tutorial's L-BFGS loop (median after three warm-up evaluations)."""
    model, style_losses, content_losses = tutorial_model(cnn, style, content)
    img = content.clone().requires_grad_(True)
    model.eval()
    model.requires_grad_(False)
    optimizer = torch.optim.LBFGS([img])
    stamps: list[float] = []

    def closure() -> torch.Tensor:
        with torch.no_grad():
            img.clamp_(0, 1)
        optimizer.zero_grad()
        model(img)
        style_score = STYLE_WEIGHT * sum(sl.loss for sl in style_losses)
        content_score = sum(cl.loss for cl in content_losses)
        loss = style_score + content_score
        loss.backward()
        _sync(content.device)
        stamps.append(time.perf_counter())
        return loss

    while len(stamps) < iters + 3:
        optimizer.step(closure)
    return statistics.median(b - a for a, b in zip(stamps[2:], stamps[3:]))


# --- ours ---
def _criterion(device: torch.device, content_layers: list[str], style_layers: list[str]) -> StyleTransferCriterion:
    encoder = functools.partial(VGGFeatures, weights="random", seed=0)
    return StyleTransferCriterion(encoder, content_layers, style_layers, style_weight=STYLE_WEIGHT).to(device)


def _run(content, style, layers, iterations: int, pyramid: Pyramid | None = None, stamps=None, **settings):
    """``stylize_pyramid`` with early stop off, so every run does the same work; ``stamps`` gets (wall seconds,
    process CPU seconds, total loss) per iteration, both clocks started at the call."""
    wall, cpu = time.perf_counter(), time.process_time()

    def stamp(info) -> None:
        _sync(content.device)
        stamps.append((time.perf_counter() - wall, time.process_time() - cpu, info.losses["loss/total"]))

    return stylize_pyramid(
        content, _criterion(content.device, *layers), pyramid=pyramid, style_images=[style],
        settings=LoopSettings(iterations=iterations, patience=None, **settings),
        callbacks=[stamp] if stamps is not None else [],
    )


def ours_seconds(content: torch.Tensor, style: torch.Tensor, iters: int, **settings) -> float:
    """Seconds per iteration of our loop (median after three warm-ups)."""
    stamps: list[tuple[float, float, float]] = []
    _run(content, style, (OURS_CONTENT, OURS_STYLE), iters + 3, stamps=stamps, **settings)
    return statistics.median(b[0] - a[0] for a, b in zip(stamps[2:], stamps[3:]))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _images(size: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled photo and udnie, resized to exactly ``size`` (H, W)."""
    content = load_image(ROOT / "assets/content/chelsea.jpg")
    style = load_image(ROOT / "assets/styles/udnie.jpg", max(size))
    resize = lambda x: F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)  # noqa: E731
    return resize(content).clamp(0, 1).to(device), resize(style).clamp(0, 1).to(device)


def _bf16_ok(device: torch.device) -> bool:
    try:
        check_precision(device, "bf16")
        return True
    except NSTError as exc:
        print(f"bf16 rows skipped: {exc}")
        return False


def speed(device: torch.device, iters: int, rounds: int) -> None:
    """Per size, alternate the variants for ``rounds`` rounds and keep each one's best round, so a
    neighbour's load on a shared machine does not decide the ratio."""
    # the whole vgg19().features stack (37 layers), with our seeded random weights: the tutorial trims it itself
    cnn = VGGFeatures(["pool5"], weights="random", seed=0).features.to(device)
    print(f"device: {_device_name(device)}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"best of {rounds} rounds of {iters} timed iterations")
    print(f"{'size':>9}  {'variant':<28} {'s/iter':>8} {'x tutorial':>10}")
    variants = {"tutorial (as published)": None, "ours (default: fp32, NHWC)": {},
                "ours fp32, NCHW": {"channels_last": False}}
    if _bf16_ok(device):
        variants["ours bf16 autocast, NHWC"] = {"precision": "bf16"}
    for h, w in SIZES:
        content, style = _images((h, w), device)
        best: dict[str, float] = {}
        for _ in range(rounds):
            for name, settings in variants.items():
                seconds = tutorial_seconds(cnn, content, style, iters) if settings is None else ours_seconds(
                    content, style, iters, **settings)
                best[name] = min(best.get(name, float("inf")), seconds)
        base = best["tutorial (as published)"]
        for name, seconds in best.items():
            print(f"{w:>4}x{h:<4}  {name:<28} {seconds:8.4f} {seconds / base:10.2f}")


def pyramid_check(device: torch.device, size: int, iterations: int, schedules: list[str]) -> None:
    """Time of each coarse-to-fine schedule until its total loss first reaches the final total loss of a
    single-scale run of ``iterations`` L-BFGS iterations, at ``size`` px on the long side. Wall time, and the
    process's CPU time, which a shared machine's other load disturbs far less."""
    h, w = round(size * 300 / 451), size
    content, style = _images((h, w), device)
    layers = (GATYS_CONTENT, GATYS_STYLE)
    stamps: list[tuple[float, float, float]] = []
    _run(content, style, layers, iterations, stamps=stamps)
    base_wall, base_cpu, target = stamps[-1]
    print(f"\ncoarse to fine at {w}x{h}, L-BFGS; single scale, {iterations} iterations: {base_wall:.1f} s "
          f"({base_cpu:.1f} s CPU), final total loss {target:.4g}")
    for text in schedules:
        schedule = [int(n) for n in text.split(",")]
        levels, stamps = len(schedule), []
        _run(content, style, layers, iterations, Pyramid(levels, schedule), stamps)
        coarse = sum(schedule[:-1])  # iterations before the full-size level
        reached = next(((t, c) for t, c, loss in stamps[coarse:] if loss <= target), None)
        when = (f"{reached[0]:.1f} s = {reached[0] / base_wall:.2f}x wall, {reached[1] / base_cpu:.2f}x CPU"
                if reached else "never")
        final_wall, final_cpu, final = stamps[-1]
        print(f"  levels={levels} iterations={schedule}: reaches {target:.4g} after {when}; its own final loss "
              f"{final:.4g} (x{final / target:.3f}) after {final_wall:.1f} s = {final_wall / base_wall:.2f}x wall, "
              f"{final_cpu / base_cpu:.2f}x CPU")


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iters", type=int, default=6, help="timed iterations per measurement (after 3 warm-ups)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best one counts")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--pyramid-size", type=int, default=256, help="long side of the pyramid comparison (1024)")
    parser.add_argument("--pyramid-iters", type=int, default=300, help="iterations of the single-scale run")
    parser.add_argument("--schedule", action="append", help=f"pyramid iterations per level, e.g. 200,100,100 "
                        f"(repeatable; default: {' and '.join(SCHEDULES)})")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-pyramid", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="vgg.weights=random")
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when the output goes to a file
    device = resolve_device(args.device)
    if not args.skip_speed:
        speed(device, args.iters, args.rounds)
    if not args.skip_pyramid:
        pyramid_check(device, args.pyramid_size, args.pyramid_iters, args.schedule or SCHEDULES)


if __name__ == "__main__":
    main()
