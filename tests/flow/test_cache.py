"""The flow cache: float16 files keyed by pair, estimator and size; a background worker; reruns read the cache."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nst.flow import FlowEstimator, reliability_mask
from nst.flow.cache import VideoFlows
from nst.flow.opencv import DISFlow
from tests.clips import moving_square_clip

H, W = 48, 64
FRAMES = moving_square_clip(5, H, W, step=2, seed=0)


class CountingDIS(FlowEstimator):
    """DIS that counts its calls and the threads it was called from."""

    def __init__(self, fail: bool = False) -> None:
        self.dis, self.calls, self.threads, self.fail = DISFlow(), 0, set(), fail
        self.name = self.dis.name

    def estimate(self, frame_t: torch.Tensor, frame_s: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.threads.add(threading.get_ident())
        if self.fail:
            raise RuntimeError("estimator broke")
        return self.dis(frame_t, frame_s)


def _source(log: list[int]):
    def frame(index: int) -> torch.Tensor:
        log.append(threading.get_ident())
        return FRAMES[index]

    return frame


def test_flows_are_cached_as_float16_and_a_rerun_computes_nothing(tmp_path: Path) -> None:
    pairs = [(t, t - 1) for t in range(1, 5)] + [(3, 1)]
    first, reads = CountingDIS(), []
    with VideoFlows(_source(reads), first, tmp_path) as flows:
        flows.prefetch(pairs)  # and the opposite flows, for the masks
        results = {p: flows.flow(*p) for p in pairs}
        masks = {p: flows.mask(*p) for p in pairs}
    assert first.calls == 2 * len(pairs) == flows.computed
    assert first.threads.isdisjoint({threading.get_ident()}) and len(first.threads) == 1  # only the worker
    assert set(reads) == first.threads
    stored = np.load(tmp_path / f"dis-medium_{W}x{H}" / "3_1.npy")
    assert stored.dtype == np.float16 and stored.shape == (2, H, W)
    direct = DISFlow()(FRAMES[3], FRAMES[1])
    torch.testing.assert_close(results[(3, 1)], direct, atol=0.01, rtol=0.002)
    assert results[(3, 1)].shape == (1, 2, H, W) and results[(3, 1)].dtype == torch.float32
    torch.testing.assert_close(masks[(2, 1)], reliability_mask(results[(2, 1)], DISFlow()(FRAMES[1], FRAMES[2])))

    again = CountingDIS()
    with VideoFlows(_source([]), again, tmp_path) as flows:  # a rerun / resume of the same video
        for p in pairs:
            assert torch.equal(flows.flow(*p), results[p])  # the very same values as the first run
            assert torch.equal(flows.mask(*p), masks[p])
    assert again.calls == 0 and flows.computed == 0


def test_the_worker_computes_prefetched_pairs_ahead_of_the_consumer(tmp_path: Path) -> None:
    estimator = CountingDIS()
    flows = VideoFlows(_source([]), estimator, tmp_path, frames_kept=3)
    flows.prefetch([(1, 0), (2, 1)], masks=False)
    deadline = time.monotonic() + 20
    while flows.computed < 2 and time.monotonic() < deadline:  # counted once the file is written
        time.sleep(0.01)
    assert estimator.calls == 2  # nobody asked for them yet
    assert sorted(p.name for p in (tmp_path / f"dis-medium_{W}x{H}").iterdir()) == ["1_0.npy", "2_1.npy"]
    flows.flow(2, 1)
    assert estimator.calls == 2
    flows.close()


def test_other_estimators_and_sizes_get_their_own_folders(tmp_path: Path) -> None:
    with VideoFlows(_source([]), DISFlow(), tmp_path) as flows:
        flows.flow(1, 0)
    small = [torch.nn.functional.interpolate(f, size=(24, 32), mode="area") for f in FRAMES]
    with VideoFlows(small.__getitem__, DISFlow("fast"), tmp_path) as flows:
        assert flows.flow(1, 0).shape == (1, 2, 24, 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dis-fast_32x24", f"dis-medium_{W}x{H}"]


def test_errors_reach_the_consumer_and_leave_no_file(tmp_path: Path) -> None:
    with VideoFlows(_source([]), CountingDIS(fail=True), tmp_path) as flows:
        flows.prefetch([(1, 0)])
        with pytest.raises(RuntimeError, match="estimator broke"):
            flows.flow(1, 0)
        with pytest.raises(ValueError):
            flows.flow(2, 2)
    assert not list(tmp_path.rglob("*.npy"))
