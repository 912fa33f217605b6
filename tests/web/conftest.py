"""Fixtures of the web page's tests: a tiny exported network, the server on a folder in ``tmp_path``, and a
helper that waits for a job."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from nst.fastnet.transformer_net import TransformerNet
from nst.fastnet.weights import export_weights
from nst.web.server import create_app
from nst.web.settings import WebSettings

ROOT = Path(__file__).resolve().parents[2]
#: What the test servers run optimize jobs with: a random VGG (no download), no loss curves.
OPTIMIZE = ["vgg.weights=random", "logger=none", "loss.style_weight=1e9"]


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny network exported as train.py exports one."""
    torch.manual_seed(0)
    net = TransformerNet(base_channels=8, num_residual=1)
    return export_weights(net, tmp_path_factory.mktemp("weights") / "tiny.pt")


def settings_for(folder: Path, weights: Path | None, **changes) -> WebSettings:
    values = {"jobs_dir": folder, "styles_dir": ROOT / "assets" / "styles", "weights": weights, "device": "cpu",
              "max_size": 256, "optimize_overrides": OPTIMIZE, "infer_overrides": ["engine=torch"], **changes}
    return WebSettings(**values)


@pytest.fixture
def serve(tmp_path: Path, tiny_weights: Path) -> Iterator[Callable[..., TestClient]]:
    """``serve(**settings)``: a started test client of a fresh server on ``tmp_path/web``; stopped afterwards."""
    clients: list[TestClient] = []

    def start(**changes) -> TestClient:
        changes.setdefault("weights", tiny_weights)
        client = TestClient(create_app(settings_for(tmp_path / "web", **changes)), base_url="http://127.0.0.1:8000")
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def wait(client: TestClient, job_id: str, timeout: float = 60.0, until: Callable[[dict], bool] | None = None) -> dict:
    """The job's record once it has finished (or once ``until(record)`` holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = client.get(f"/api/jobs/{job_id}").json()
        if (until or (lambda r: r["status"] not in ("queued", "running")))(record):
            return record
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {record['status']} after {timeout} s: {record}")


def post_job(client: TestClient, path: Path, name: str | None = None, painting: Path | None = None, **fields):
    files = {"input": (name or path.name, path.read_bytes())}
    if painting is not None:
        files["style_file"] = (painting.name, painting.read_bytes())
    return client.post("/api/jobs", files=files, data={k: str(v) for k, v in fields.items()})
