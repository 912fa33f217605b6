"""The framework-free pixel optimiser of Gatys, Ecker & Bethge 2016: the pixels are the parameters.

:class:`PixelOptimizer` is a small class with explicit state (minGPT's trainer is the model): one
:class:`LoopSettings` describes how to optimise, :meth:`PixelOptimizer.run` optimises one image against any
loss function, and :class:`LoopCallback` objects see every iteration. Stills (:mod:`nst.gatys.image`) and
video frames use the same loop with the same settings.

Conventions:

* One iteration is one loss evaluation (a forward and a backward pass), for L-BFGS and Adam alike, as in
  the paper's code; L-BFGS's inner evaluations are counted by the closure, so ``iterations=300`` is 300
  evaluations however L-BFGS groups them.
* The returned image is the evaluated one of the lowest total loss, not the last (L-BFGS may end on a worse
  point, with ``strong_wolfe`` even on a rejected trial point); it is kept by a select on the device, without a
  host sync, and the losses reported as final are those of its iteration, ``best``.
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
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from nst.errors import NSTError
from nst.losses import TERMS

#: What Hydra's ``_partial_: true`` optimizer config instantiates to: params -> optimizer.
OptimizerFactory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]
#: A function of the current image returning the criterion's named terms (with ``total``).
LossFn = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]

PRECISIONS = ("fp32", "bf16")
#: Terms always logged, so the curves of every run have the same columns.
ALWAYS_LOGGED = ("content", "style", "tv")
STOP_REASONS = {"iterations": "iteration budget used up", "early_stop": "early stop, the total loss plateaued"}
#: Adam on CUDA copies its losses to the host this often (iterations).
CUDA_SYNC_EVERY = 20


def metric_name(term: str) -> str:
    """The logged name of a criterion term: ``loss/<term>``, shared with the fast-network loop."""
    return f"loss/{term}"


def default_lbfgs(params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """The paper's optimiser: L-BFGS, lr 1, history 100, torch's own stopping tests off."""
    return torch.optim.LBFGS(params, lr=1.0, history_size=100, tolerance_grad=0.0, tolerance_change=0.0)


@dataclass
class LoopSettings:
    """How pixels are optimised: one object serves a still image and every frame of a video.

    Args:
        iterations: loss evaluations per run (L-BFGS's inner ones included).
        optimizer: a factory ``params -> optimizer`` (Hydra ``_partial_``); ``None``: :func:`default_lbfgs`.
        patience / tolerance: early stop when the total loss changed by less than ``tolerance`` (relative)
            over ``patience`` iterations; ``patience=None`` runs the whole budget.
        precision: ``fp32``, or ``bf16`` autocast of the VGG forward (Gram matrices stay fp32).
        channels_last: feed VGG an NHWC copy of the image (faster on CUDA, and 0-10 % on CPU).
        sync_every: iterations between device -> host copies of the losses (default: see module doc).
    """

    iterations: int = 300
    optimizer: OptimizerFactory | None = None
    patience: int | None = 50
    tolerance: float = 1e-4
    precision: str = "fp32"
    channels_last: bool = True
    sync_every: int | None = None

    def __post_init__(self) -> None:
        if int(self.iterations) < 1:
            raise NSTError(f"iterations must be at least 1, got {self.iterations}")
        if self.precision not in PRECISIONS:
            raise NSTError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        self.iterations = int(self.iterations)
        if self.patience is not None:
            EarlyStopping(self.patience, self.tolerance)  # validates both values


@dataclass(frozen=True)
class IterationInfo:
    """What a callback sees after each iteration.

    ``image`` is the optimised tensor itself (detached): read it, do not modify it. For Adam on CUDA,
    callbacks run in batches of ``sync_every`` iterations and ``image`` is the newest one of the batch.
    With ``preserve_color`` it is the luminance image being optimised.
    """

    iteration: int  # 0-based
    losses: dict[str, float]  # metric name -> weighted value
    image: torch.Tensor
    iterations: int  # the budget


@dataclass
class StylizeResult:
    """The outcome of one optimised image."""

    image: torch.Tensor  # (1, 3, H, W) in [0, 1], detached, on the loop's device
    history: dict[str, list[float]]  # metric name -> value per iteration
    iterations: int  # loss evaluations run
    stop_reason: str  # a key of STOP_REASONS
    seconds: float
    best: int = -1  # index into ``history`` of the iteration that evaluated ``image`` (the lowest total loss)

    def final_losses(self) -> dict[str, float]:
        """The losses of the returned image (iteration ``best``), by metric name."""
        return {name: values[self.best] for name, values in self.history.items()}

    def summary(self) -> str:
        """One line: iterations run, why it stopped, seconds, the returned image's losses."""
        losses = " ".join(f"{name}={value:.4g}" for name, value in self.final_losses().items())
        best = self.best % max(self.iterations, 1)
        at = f" (best: iteration {best})" if best < self.iterations - 1 else ""
        return (
            f"done: {self.iterations} iterations, stopped: {STOP_REASONS.get(self.stop_reason, self.stop_reason)}, "
            f"{self.seconds:.1f} s; {losses}{at}"
        )


class LoopCallback:
    """Base of the loop's callbacks; a plain function ``f(info)`` works too, as a per-iteration hook."""

    def on_iteration(self, info: IterationInfo) -> None:
        """Called once per iteration, in order."""

    def on_end(self, result: StylizeResult | None) -> None:
        """Called once when the run ends: with the result, or ``None`` if it failed (always called)."""


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


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The VGG forward's precision: ``fp32``, or ``bf16`` autocast (Gram matrices stay fp32, see losses)."""
    if precision not in PRECISIONS:
        raise NSTError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


class _Stop(Exception):
    """Leaves the L-BFGS closure between evaluations, when the budget is spent or early stopping fires."""


class PixelOptimizer:
    """Optimises the pixels of one image at a time against a loss function.

    State lives in attributes, reset at the start of every :meth:`run`: ``count`` (loss evaluations so far),
    ``stop_reason`` (empty while running), ``history`` (metric name -> values), ``best`` (the iteration of the
    lowest total loss logged so far).
    """

    def __init__(self, settings: LoopSettings, callbacks: Sequence[LoopCallback | Callable] = ()):
        self.settings = settings
        self.hooks = [cb.on_iteration if isinstance(cb, LoopCallback) else cb for cb in callbacks]
        self.count = 0
        self.stop_reason = ""
        self.history: dict[str, list[float]] = {}
        self.best = -1

    def run(self, init: torch.Tensor, loss_fn: LossFn) -> tuple[torch.Tensor, dict[str, list[float]], int, str]:
        """Optimise ``init`` against ``loss_fn`` for at most ``settings.iterations`` loss evaluations.

        Returns ``(image, history, iterations run, stop reason)``; the image is the evaluated one of the lowest
        total loss (iteration ``self.best``), not clamped. Raises :class:`NSTError` when a loss turns NaN/inf
        (before any image leaves the loop).
        """
        s = self.settings
        self.count, self.stop_reason, self.history, self.best = 0, "", {}, -1
        self._best_loss = math.inf  # the host's copy of the device's best total, below
        self._pending: list[torch.Tensor] = []
        self._keys: list[str] = []
        self._early = EarlyStopping(s.patience, s.tolerance) if s.patience is not None else None
        self._loss_fn = loss_fn
        self._image = init.detach().clone().contiguous().requires_grad_(True)
        self._best_image, self._best_total = init.detach().clone(), torch.full((), math.inf, device=init.device)
        try:
            self._opt = (s.optimizer or default_lbfgs)([self._image])
        except (TypeError, ValueError) as exc:  # torch's optimizers check their settings on construction
            raise NSTError(f"the optimizer refused its settings ({exc}); check optimizer.*") from None
        self._lbfgs = isinstance(self._opt, torch.optim.LBFGS)
        if self._lbfgs:  # one step() call may use the whole budget; the closure decides when to stop
            for group in self._opt.param_groups:
                group["max_iter"] = s.iterations
                group["max_eval"] = 2 * s.iterations + 1
        sync = s.sync_every
        self._sync_every = sync or (CUDA_SYNC_EVERY if init.device.type == "cuda" and not self._lbfgs else 1)
        if self._lbfgs:
            try:
                while True:  # step() returns by itself only on torch's own convergence tests; go on until _Stop
                    self._opt.step(self._closure)
            except _Stop:
                pass
        else:
            while not self.stop_reason:
                self._evaluate()
                if self.stop_reason:
                    break  # keep the image that was just evaluated
                self._opt.step()
        if not bool(torch.isfinite(self._best_image).all()):  # one sync, at the end
            raise self._diverged(self.count - 1)
        return self._best_image, self.history, self.count, self.stop_reason

    def _keep_if_best(self, image: torch.Tensor, total: torch.Tensor) -> None:
        """Keep ``image`` if its loss is the lowest yet (NaN never is); :meth:`_flush` finds the same iteration."""
        total = total.detach().float()
        better = total < self._best_total
        self._best_total = torch.where(better, total, self._best_total)
        self._best_image = torch.where(better, image.detach(), self._best_image)

    def _evaluate(self) -> torch.Tensor:
        s = self.settings
        self._opt.zero_grad(set_to_none=True)
        image = self._image
        x = image.contiguous(memory_format=torch.channels_last) if s.channels_last else image
        with autocast(image.device, s.precision):
            terms = self._loss_fn(x)
        total = terms["total"]
        total.backward()
        self._keep_if_best(image, total)
        if not self._keys:
            extra = (t for t in TERMS if t in terms and t not in ALWAYS_LOGGED)
            self._keys.extend([*ALWAYS_LOGGED, *extra, "total"])
        zero = total.new_zeros(())
        self._pending.append(torch.stack([terms[k].detach().float() if k in terms else zero for k in self._keys]))
        self.count += 1
        if len(self._pending) >= self._sync_every or self.count >= s.iterations:
            self._flush()
        return total

    def _closure(self) -> torch.Tensor:
        total = self._evaluate()
        if self.stop_reason:
            raise _Stop
        return total

    def _flush(self) -> None:
        rows = torch.stack(self._pending).tolist()  # the one device -> host copy of these iterations
        self._pending.clear()
        first = self.count - len(rows)
        for offset, row in enumerate(rows):
            iteration = first + offset
            if not all(math.isfinite(v) for v in row):
                raise self._diverged(iteration)
            losses = {metric_name(key): value for key, value in zip(self._keys, row)}
            for name, value in losses.items():
                self.history.setdefault(name, []).append(value)
            if losses["loss/total"] < self._best_loss:
                self._best_loss, self.best = losses["loss/total"], iteration
            if self._early is not None and not self.stop_reason and self._early.update(losses["loss/total"]):
                self.stop_reason = "early_stop"
            info = IterationInfo(iteration, losses, self._image.detach(), self.settings.iterations)
            for hook in self.hooks:
                hook(info)
        if self.count >= self.settings.iterations and not self.stop_reason:
            self.stop_reason = "iterations"

    def _diverged(self, iteration: int) -> NSTError:
        fix = "use optimizer=adam (or optimizer.line_search_fn=strong_wolfe)" if self._lbfgs else "lower optimizer.lr"
        name = "L-BFGS" if self._lbfgs else "the optimizer"
        return NSTError(
            f"the loss became NaN/inf at iteration {iteration} ({name} diverged); "
            f"no image was written. Lower loss.style_weight (e.g. 10x smaller) or {fix}"
        )
