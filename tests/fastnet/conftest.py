"""Fixtures of the fast-network tests: one thread for tiny tensors, and the session's tiny train config."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig

from tests.helpers import copy_config


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread: None) -> None:
    """Every module of tests/fastnet runs on one thread (tests/conftest.py's ``one_thread``)."""


@pytest.fixture
def config(root_configs, tmp_path: Path):
    """``config(*overrides, out=tmp_path)``: the session's tiny train config (random VGG, 32 px crops, a tiny
    net, no loggers) with ``key=value`` overrides."""

    def make(*overrides: str, out: Path | None = None) -> DictConfig:
        return copy_config(root_configs["train"], out or tmp_path, *overrides)

    return make
