"""Lightning-free image optimisation (Gatys, Ecker & Bethge 2016): the pixels are the parameters.

:func:`stylize_image` prepares targets and the initial image; :func:`optimize_pixels` is the loop itself,
shared by both optimisers and kept separate so a later ``stylize_video`` (Ruder et al. 2016: flow-warped
init plus the criterion's temporal term) can call it once per frame.

Conventions:

* One iteration is one loss evaluation (a forward and a backward pass), for L-BFGS and Adam alike, as in
  the paper's code; L-BFGS's inner evaluations are counted by the closure, so ``iterations=300`` is 300
  evaluations however L-BFGS groups them. The returned image is the last one evaluated.
* Stopping is the loop's job: torch's L-BFGS tolerances are 0 in the config, and a private exception
  leaves the L-BFGS closure when the budget is spent or :class:`EarlyStopping` fires.
* Losses stay on the device and are copied to the host in one transfer every ``sync_every`` iterations
  (every iteration for L-BFGS, which syncs on each evaluation anyway; every 20 for Adam on CUDA), so the
  GPU never waits for Python inside an Adam iteration. Callbacks see those iterations in order.
* Logged metric names are ``loss/<term>`` for the criterion's weighted terms and ``loss/total``; content,
  style and tv are always present (0 when their weight is 0), so every run has the same columns.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nst import color
from nst.errors import NSTError
from nst.image import load_image
from nst.losses import TERMS, StyleTransferCriterion

#: What Hydra's ``_partial_: true`` optimizer config instantiates to: params -> optimizer.
OptimizerFactory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]
#: A function of the current image returning the criterion's named terms (with ``total``).
LossFn = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]

INITS = ("content", "noise", "style")
PRECISIONS = ("fp32", "bf16")
#: Terms always logged for a still image, so the curves of every run have the same columns.
ALWAYS_LOGGED = ("content", "style", "tv")
STOP_REASONS = {"iterations": "iteration budget used up", "early_stop": "early stop, the total loss plateaued"}
#: Adam on CUDA copies its losses to the host this often (iterations).
CUDA_SYNC_EVERY = 20


def metric_name(term: str) -> str:
    """The logged name of a criterion term: ``loss/<term>``, shared with the fast-network loop."""
    return f"loss/{term}"


@dataclass(frozen=True)
class IterationInfo:
    """What a callback sees after each iteration (minGPT-style hook).

    ``image`` is the optimised tensor itself (detached): read it, do not modify it. For Adam on CUDA,
    callbacks run in batches of ``sync_every`` iterations and ``image`` is the newest one of the batch.
    With ``preserve_color`` it is the luminance image being optimised.
    """

    iteration: int  # 0-based
    losses: dict[str, float]  # metric name -> weighted value
    image: torch.Tensor
    iterations: int  # the budget


class Callback:
    """Base of the loop's callbacks; a plain function ``f(info)`` works too, as a per-iteration hook."""

    def on_iteration(self, info: IterationInfo) -> None:
        """Called once per iteration, in order."""

    def on_end(self, result: StylizeResult | None) -> None:
        """Called once when the run ends: with the result, or ``None`` if it failed (always called)."""


@dataclass
class StylizeResult:
    """The outcome of :func:`stylize_image`."""

    image: torch.Tensor  # (1, 3, H, W) in [0, 1], detached, on the loop's device
    history: dict[str, list[float]]  # metric name -> value per iteration
    iterations: int  # loss evaluations run
    stop_reason: str  # a key of STOP_REASONS
    seconds: float

    def final_losses(self) -> dict[str, float]:
        """The losses of the last iteration, by metric name."""
        return {name: values[-1] for name, values in self.history.items()}

    def summary(self) -> str:
        """One line: iterations run, why it stopped, seconds, final losses."""
        losses = " ".join(f"{name}={value:.4g}" for name, value in self.final_losses().items())
        return (
            f"done: {self.iterations} iterations, stopped: {STOP_REASONS.get(self.stop_reason, self.stop_reason)}, "
            f"{self.seconds:.1f} s; {losses}"
        )


class EarlyStopping:
    """Stop when the total loss changed by less than ``tolerance`` (relative) over ``patience`` iterations.

    Plain host arithmetic on the logged floats, so it serves L-BFGS (which the paper's code could not stop
    early) and Adam alike. Defaults: 0.01 % over 50 iterations.
    """

    def __init__(self, patience: int = 50, tolerance: float = 1e-4):
        if int(patience) < 1:
            raise NSTError(f"early_stop.patience must be at least 1, got {patience}")
        if not float(tolerance) >= 0:
            raise NSTError(f"early_stop.tolerance must be >= 0, got {tolerance}")
        self.patience = int(patience)
        self.tolerance = float(tolerance)
        self._window: deque[float] = deque(maxlen=self.patience + 1)

    def update(self, loss: float) -> bool:
        """Record one iteration's total loss; True once the last ``patience`` iterations changed it too little."""
        self._window.append(float(loss))
        if len(self._window) <= self.patience:
            return False
        old = self._window[0]
        return loss == old or abs(old - loss) < self.tolerance * abs(old)

    def reset(self) -> None:
        """Forget the history (e.g. before the next video frame)."""
        self._window.clear()


class _Stop(Exception):
    """Leaves the L-BFGS closure between evaluations, when the budget is spent or early stopping fires."""


def load_input(path: str | os.PathLike, max_size: int | None, what: str = "input") -> torch.Tensor:
    """Load a content or style image (see :func:`nst.image.load_image`); errors say which input it was."""
    try:
        return load_image(path, max_size)
    except NSTError as exc:
        raise NSTError(f"{what}: {exc}") from None


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The VGG forward's precision: ``fp32``, or ``bf16`` autocast (Gram matrices stay fp32, see losses)."""
    if precision not in PRECISIONS:
        raise NSTError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _diverged(iteration: int, lbfgs: bool) -> NSTError:
    fix = "use optimizer=adam (or optimizer.line_search_fn=strong_wolfe)" if lbfgs else "lower optimizer.lr"
    return NSTError(
        f"the loss became NaN/inf at iteration {iteration} ({'L-BFGS' if lbfgs else 'the optimizer'} diverged); "
        f"no image was written. Lower loss.style_weight (e.g. 10x smaller) or {fix}"
    )


def optimize_pixels(
    init: torch.Tensor,
    loss_fn: LossFn,
    optimizer: OptimizerFactory,
    iterations: int,
    *,
    early_stop: EarlyStopping | None = None,
    callbacks: Sequence[Callback | Callable[[IterationInfo], None]] = (),
    sync_every: int | None = None,
    channels_last: bool = True,
    precision: str = "fp32",
) -> tuple[torch.Tensor, dict[str, list[float]], int, str]:
    """Optimise the pixels of ``init`` against ``loss_fn`` for at most ``iterations`` loss evaluations.

    Returns ``(image, history, iterations run, stop reason)``; the image is the last one evaluated, not
    clamped. Raises :class:`NSTError` when a loss turns NaN/inf (before any image leaves the loop).
    ``channels_last`` feeds VGG an NHWC copy of the image while the parameter itself stays contiguous,
    which torch's L-BFGS needs to flatten gradients.
    """
    if int(iterations) < 1:
        raise NSTError(f"iterations must be at least 1, got {iterations}")
    iterations = int(iterations)
    device = init.device
    image = init.detach().clone().contiguous().requires_grad_(True)
    try:
        opt = optimizer([image])
    except (TypeError, ValueError) as exc:  # torch's optimizers check their settings on construction
        raise NSTError(f"the optimizer refused its settings ({exc}); check optimizer.*") from None
    lbfgs = isinstance(opt, torch.optim.LBFGS)
    if lbfgs:  # one step() call may use the whole budget; the closure decides when to stop
        for group in opt.param_groups:
            group["max_iter"] = iterations
            group["max_eval"] = 2 * iterations + 1
    if sync_every is None:
        sync_every = CUDA_SYNC_EVERY if device.type == "cuda" and not lbfgs else 1
    hooks = [cb.on_iteration if isinstance(cb, Callback) else cb for cb in callbacks]
    if early_stop is not None:
        early_stop.reset()  # the same object may serve several runs (e.g. video frames)

    history: dict[str, list[float]] = {}
    pending: list[torch.Tensor] = []
    keys: list[str] = []
    state = {"count": 0, "stop": ""}

    def flush() -> None:
        rows = torch.stack(pending).tolist()  # the one device -> host copy of these iterations
        pending.clear()
        first = state["count"] - len(rows)
        for offset, row in enumerate(rows):
            iteration = first + offset
            if not all(math.isfinite(v) for v in row):
                raise _diverged(iteration, lbfgs)
            losses = {metric_name(key): value for key, value in zip(keys, row)}
            for name, value in losses.items():
                history.setdefault(name, []).append(value)
            if early_stop is not None and not state["stop"] and early_stop.update(losses["loss/total"]):
                state["stop"] = "early_stop"
            info = IterationInfo(iteration, losses, image.detach(), iterations)
            for hook in hooks:
                hook(info)
        if state["count"] >= iterations and not state["stop"]:
            state["stop"] = "iterations"

    def evaluate() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        x = image.contiguous(memory_format=torch.channels_last) if channels_last else image
        with autocast(device, precision):
            terms = loss_fn(x)
        total = terms["total"]
        total.backward()
        if not keys:
            keys.extend([*ALWAYS_LOGGED, *(t for t in TERMS if t in terms and t not in ALWAYS_LOGGED), "total"])
        zero = total.new_zeros(())
        pending.append(torch.stack([terms[k].detach().float() if k in terms else zero for k in keys]))
        state["count"] += 1
        if len(pending) >= sync_every or state["count"] >= iterations:
            flush()
        return total

    def closure() -> torch.Tensor:
        total = evaluate()
        if state["stop"]:
            raise _Stop
        return total

    if lbfgs:
        try:
            while True:  # step() returns by itself only on torch's own convergence tests; go on until _Stop
                opt.step(closure)
        except _Stop:
            pass
    else:
        while not state["stop"]:
            evaluate()
            if state["stop"]:
                break  # keep the image that was just evaluated
            opt.step()
    if not bool(torch.isfinite(image).all()):  # one sync, at the end
        raise _diverged(state["count"] - 1, lbfgs)
    return image.detach(), history, state["count"], state["stop"]


def _initial_image(
    init: str | torch.Tensor, content: torch.Tensor, style: torch.Tensor | None, seed: int
) -> torch.Tensor:
    if isinstance(init, torch.Tensor):
        if init.shape != content.shape:
            raise NSTError(f"init image has shape {tuple(init.shape)}, the content {tuple(content.shape)}")
        return init.to(content.device, torch.float32)
    if init == "content":
        return content.clone()
    if init == "noise":  # white noise as in the paper, drawn on the CPU so every device starts alike
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
    style_images: Sequence[torch.Tensor] | None = None,
    style_blend: Sequence[float] | None = None,
    init: str | torch.Tensor = "content",
    optimizer: OptimizerFactory | None = None,
    iterations: int = 300,
    early_stop: EarlyStopping | None = None,
    preserve_color: bool = False,
    precision: str = "fp32",
    callbacks: Sequence[Callback | Callable[[IterationInfo], None]] = (),
    seed: int = 0,
    sync_every: int | None = None,
    channels_last: bool = True,
) -> StylizeResult:
    """Gatys et al. 2016 for one image: optimise pixels so their VGG features match ``content``'s and their
    Gram matrices match the style's.

    Args:
        content: (1, 3, H, W) in [0, 1]; the output has its size. Moved to the criterion's device.
        criterion: the shared loss; its style targets are set here from ``style_images`` (blended with
            ``style_blend``), or must already be set when no style images are given.
        init: ``content``, ``noise`` (seeded white noise), ``style`` (first style image, resized), or a tensor.
        optimizer: a factory ``params -> optimizer`` (Hydra ``_partial_``); default: L-BFGS, lr 1, history 100.
        iterations: loss evaluations (L-BFGS's inner ones included).
        early_stop: an :class:`EarlyStopping`, or ``None`` to run the whole budget.
        preserve_color: luminance-only transfer (Gatys et al. 2016b, see :mod:`nst.color`); needs the style
            images, whose luminance is matched to the content's.
        precision: ``fp32`` or ``bf16`` (autocast of the VGG forward).
        callbacks: :class:`Callback` objects or plain per-iteration functions.
        sync_every: iterations between device -> host copies of the losses (default: see module doc).
        channels_last: NHWC layout for VGG (and ``criterion`` is converted to it): the fast path on CUDA,
            and 0-10 % faster on CPU too (bench/optimize_speed.py).
    """
    start = time.perf_counter()
    result: StylizeResult | None = None
    try:
        device = criterion.encoder.mean.device
        content = content.to(device, torch.float32)
        styles = [s.to(device, torch.float32) for s in style_images] if style_images is not None else None
        work_content = content
        if preserve_color:
            if not styles:
                raise NSTError("preserve_color needs the style images, to match their luminance to the content's")
            work_content = color.luminance_only(content)
            styles = [color.match_luminance(s, content) for s in styles]
        if channels_last:
            criterion.to(memory_format=torch.channels_last)
        with autocast(device, precision):
            if styles:
                criterion.set_style(styles, style_blend)
            targets = criterion.content_targets(work_content) if criterion.enabled("content") else None
        if criterion.enabled("style") and not criterion.target_grams:
            raise NSTError("no style targets: pass style_images or call criterion.set_style() first")
        x0 = _initial_image(init, work_content, styles[0] if styles else None, seed)
        if optimizer is None:
            optimizer = _default_lbfgs
        image, history, count, reason = optimize_pixels(
            x0,
            lambda x: criterion(x, targets),
            optimizer,
            iterations,
            early_stop=early_stop,
            callbacks=callbacks,
            sync_every=sync_every,
            channels_last=channels_last,
            precision=precision,
        )
        image = color.restore_color(image, content) if preserve_color else image.clamp(0, 1)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        result = StylizeResult(image, history, count, reason, time.perf_counter() - start)
        return result
    finally:
        for cb in callbacks:
            if isinstance(cb, Callback):
                cb.on_end(result)


def _default_lbfgs(params: list[torch.Tensor]) -> torch.optim.Optimizer:
    return torch.optim.LBFGS(params, lr=1.0, history_size=100, tolerance_grad=0.0, tolerance_change=0.0)
