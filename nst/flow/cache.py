"""Flows of a video, computed once by a background worker and cached on disk as float16 files.

Layout: ``<folder>/<estimator.name>_<W>x<H>/<t>_<s>.npy`` holds the flow of frame t towards frame s, an
array (2, H, W) float16 (pixels; 1/16 px resolution up to 128 px of motion, plenty for warping). A rerun
or a resume with the same folder, estimator and frame size reads these files instead of recomputing, and
files are written atomically, so a stopped run never leaves a half-written flow behind.

One worker thread computes the pairs asked for with :meth:`VideoFlows.prefetch` ahead of the consumer;
a pair the consumer needs now (:meth:`VideoFlows.flow`) jumps the queue. Only the worker calls the
estimator and the frame source, so neither needs to be thread-safe. Results are the stored float16
values whether they were just computed or read back, so a resumed run sees exactly the same flows.
"""

from __future__ import annotations

import itertools
import os
import queue
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import torch

from nst.flow.estimator import FlowEstimator
from nst.flow.masks import reliability_mask

Pair = tuple[int, int]
_URGENT, _AHEAD, _STOP = 0, 1, -1


class VideoFlows:
    """The flows and reliability masks between frames of one video, cached in ``folder``.

    Args:
        frame_source: ``index -> (1, 3, H, W)`` frame in [0, 1] (any device); called from the worker thread only.
        estimator: the flow estimator; its ``name`` and the frame size key the cache.
        folder: where the cache lives (e.g. ``<run dir>/flow``).
        device: where :meth:`flow` and :meth:`mask` return their tensors.
        frames_kept: how many decoded frames the worker keeps for the next pairs.
    """

    def __init__(
        self,
        frame_source: Callable[[int], torch.Tensor],
        estimator: FlowEstimator,
        folder: str | os.PathLike,
        device: torch.device | str = "cpu",
        frames_kept: int = 8,
    ):
        self.frame_source = frame_source
        self.estimator = estimator
        self.folder = Path(folder)
        self.device = torch.device(device)
        self.computed = 0  #: flows computed (not read from the cache) by this object
        self._frames: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._frames_kept = max(2, int(frames_kept))
        self._size: tuple[int, int] | None = None  # (W, H), from the first frame the worker reads
        self._lock = threading.Lock()
        self._pending: dict[Pair, Future] = {}
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._worker: threading.Thread | None = None

    def flow(self, t: int, s: int) -> torch.Tensor:
        """The flow of frame t towards s, (1, 2, H, W) float32: read from the cache or computed now."""
        return self._result(self._request((t, s), _URGENT))

    def mask(self, t: int, s: int) -> torch.Tensor:
        """The reliability mask (1, 1, H, W) of warping frame s onto t (:func:`nst.flow.reliability_mask`)."""
        ahead = self._request((s, t), _URGENT)  # queue both before waiting on either
        flow_ts = self.flow(t, s)
        return reliability_mask(flow_ts, self._result(ahead))

    def prefetch(self, pairs: Iterable[Pair], masks: bool = True) -> None:
        """Queue pairs (t, s) for the worker, in order; ``masks`` also queues each opposite flow (s, t)."""
        for t, s in pairs:
            self._request((t, s), _AHEAD)
            if masks:
                self._request((s, t), _AHEAD)

    def close(self) -> None:
        """Stop the worker after its current pair; queued pairs are dropped (nothing half-written remains)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            self._queue.put((_STOP, next(self._order), None))
            worker.join()
        with self._lock:
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()

    def __enter__(self) -> VideoFlows:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(self, pair: Pair, priority: int) -> Future:
        t, s = (int(i) for i in pair)
        if t == s or min(t, s) < 0:
            raise ValueError(f"a flow needs two different frame indices >= 0, got ({t}, {s})")
        with self._lock:
            future = self._pending.get((t, s))
            if future is None:
                future = Future()
                self._pending[(t, s)] = future
            elif priority != _URGENT:
                return future
            self._queue.put((priority, next(self._order), (t, s)))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="nst-flow-cache", daemon=True)
                self._worker.start()
        return future

    def _result(self, future: Future) -> torch.Tensor:
        return future.result().to(self.device)

    def _work(self) -> None:
        while True:
            priority, _, pair = self._queue.get()
            if priority == _STOP:
                return
            with self._lock:
                future = self._pending.get(pair)
            if future is None or future.done():
                continue  # a duplicate entry of a pair already served
            try:
                flow = self._load_or_compute(*pair)
            except Exception as exc:  # handed to whoever waits on the pair
                with self._lock:
                    self._pending.pop(pair, None)
                future.set_exception(exc)
                continue
            with self._lock:
                self._pending.pop(pair, None)
            future.set_result(flow)

    def _load_or_compute(self, t: int, s: int) -> torch.Tensor:
        if self._size is None:  # the cache is keyed by the frame size: one frame is read even on a resume
            frame = self._frame(t)
            self._size = (int(frame.shape[-1]), int(frame.shape[-2]))
        width, height = self._size
        path = self.folder / f"{self.estimator.name}_{width}x{height}" / f"{t}_{s}.npy"
        if path.is_file():
            try:
                stored = np.load(path)
                if stored.shape == (2, height, width):
                    return torch.from_numpy(stored.astype(np.float32)).unsqueeze(0)
            except (OSError, ValueError):
                pass  # unreadable: compute it again and overwrite
        frame_t, frame_s = self._frame(t), self._frame(s)
        if frame_t.shape[-2:] != (height, width) or frame_s.shape[-2:] != (height, width):
            raise ValueError(f"frames of one video must all be {width}x{height}; frame {t} or {s} is not")
        flow = self.estimator(frame_t, frame_s)
        stored = flow[0].detach().cpu().to(torch.float16).numpy()
        _save_atomic(path, stored)
        self.computed += 1
        return torch.from_numpy(stored.astype(np.float32)).unsqueeze(0)

    def _frame(self, index: int) -> torch.Tensor:
        frame = self._frames.pop(index, None)
        if frame is None:
            frame = self.frame_source(index)
        self._frames[index] = frame
        while len(self._frames) > self._frames_kept:
            self._frames.popitem(last=False)
        return frame


def _save_atomic(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
