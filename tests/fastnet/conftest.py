"""Fixtures of the fast-network tests: one thread for tiny tensors, and the session's tiny train config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from tests.helpers import copy_config


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one thread avoids OpenMP overhead (and stalls when the 2 cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def config(root_configs, tmp_path: Path):
    """``config(*overrides, out=tmp_path)``: the session's tiny train config (random VGG, 32 px crops, a tiny
    net, no loggers) with ``key=value`` overrides."""

    def make(*overrides: str, out: Path | None = None) -> DictConfig:
        return copy_config(root_configs["train"], out or tmp_path, *overrides)

    return make
