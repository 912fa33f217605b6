"""Shared test fixtures: seeded, small, offline."""

from __future__ import annotations

import os
import sys

import pytest
import torch

# Tests never reach W&B's servers, and never ask for a login.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def python() -> str:
    """The interpreter running the tests, for end-to-end subprocess runs of the entry points."""
    return sys.executable
