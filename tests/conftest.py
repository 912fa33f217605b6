"""Shared test fixtures: seeded, small, offline. Each root config is composed once per session; every test
gets its own copy, with its paths in the test's ``tmp_path``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from tests.helpers import compose_config, copy_config, make_images, write_vgg16_weights

# Tests never reach W&B's servers, and never ask for a login.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(min(2, torch.get_num_threads()))

#: What every test run of a command uses: a random VGG, tiny images and networks, no trackers.
TEST_OVERRIDES = {
    "optimize": ["vgg.weights=random", "loss.style_weight=1e9", "max_size=64", "logger=none"],
    "train": [
        "data=folder",
        "vgg.weights=random",
        "data.image_size=32",
        "data.batch_size=2",
        "data.num_workers=0",
        "data.num_val=2",
        "model.net.base_channels=8",
        "model.net.num_residual=1",
        "logger=none",
        "trainer.accelerator=cpu",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "callbacks.consistency.size=48",
        "callbacks.consistency.max_frames=3",
    ],
    "infer": [],
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors: one thread avoids OpenMP overhead (and stalls when the 2 cores are shared); a module asks for
    it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def python() -> str:
    """The interpreter running the tests, for end-to-end subprocess runs of the entry points."""
    return sys.executable


@pytest.fixture(scope="session")
def train_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight smooth 48 px pictures, the training data of the in-process training tests."""
    return make_images(tmp_path_factory.mktemp("train_images"))


@pytest.fixture(scope="session")
def vgg16_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny VGG-16 weights file, loaded as ``vgg.arch=vgg16 vgg.weights=<it>`` (how ``vgg=hed16`` loads HED's)."""
    return write_vgg16_weights(tmp_path_factory.mktemp("vgg16") / "vgg16_features.pth")


@pytest.fixture(scope="session")
def root_configs(train_images: Path) -> dict[str, DictConfig]:
    """``optimize``, ``train`` and ``infer`` composed once, with :data:`TEST_OVERRIDES`."""
    paths = {name: [f"paths.output_dir={train_images.parent / 'unused'}"] for name in TEST_OVERRIDES}
    paths["train"].append(f"data.root={train_images}")
    return {name: compose_config(name, [*overrides, *paths[name]]) for name, overrides in TEST_OVERRIDES.items()}


@pytest.fixture
def make_config(root_configs: dict[str, DictConfig], tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_config(name, *overrides, out=tmp_path)``: a copy of a root config, run folder ``out``, with
    ``key=value`` overrides merged in (groups cannot be switched this way: compose for that)."""

    def make(name: str, *overrides: str, out: Path | None = None) -> DictConfig:
        return copy_config(root_configs[name], out or tmp_path, *overrides)

    return make
