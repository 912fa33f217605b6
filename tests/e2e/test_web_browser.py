"""The web page in a real browser: headless Debian Chromium, driven by Playwright, against the server on a free
port. It uploads a photo, picks a style, presses the button, waits for the result and downloads it.

CI installs Chromium (.ci/run); without it this test fails and says how to install it, rather than skip.
``NST_WEB_SCREENSHOT=docs/img/web.png`` also saves the page's screenshot there.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst.fastnet.transformer_net import TransformerNet
from nst.fastnet.weights import export_weights
from nst.web.server import create_app
from tests.helpers import make_images
from tests.web.conftest import settings_for

CHROMIUM = "/usr/bin/chromium"


def _browser_path() -> str:
    path = shutil.which("chromium") or CHROMIUM
    if not Path(path).is_file():
        pytest.fail("the browser test needs Debian's Chromium: apt-get install -y chromium (.ci/run does this)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):
    """The page's server with a tiny two-style network, on 127.0.0.1 and a free port, in a thread."""
    import uvicorn

    weights = export_weights(TransformerNet(base_channels=8, num_residual=1, styles=["udnie", "great_wave"]),
                             tmp_path / "networks" / "two_styles.pt")
    port = _free_port()
    app = create_app(settings_for(tmp_path / "web", weights.parent, port=port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


def test_the_page_stylizes_a_photo(server: str, tmp_path: Path) -> None:
    executable = _browser_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs Playwright: pip install -e '.[dev]'")
    photo = make_images(tmp_path / "photos", n=1, size=(96, 64), suffix=".jpg") / "img0.jpg"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server)
            page.wait_for_selector(".tile[data-style=great_wave] img")
            page.set_input_files("#file", str(photo))
            page.wait_for_selector("#file-info:has-text('Photo: 96×64')")
            page.click(".tile[data-style=great_wave]")
            page.select_option("#style2", "udnie")
            page.fill("#blend", "25")
            assert "75% great_wave + 25% udnie" in page.inner_text("#blend-label")
            page.click("#go")
            page.wait_for_function("document.querySelector('#result-image')?.complete", timeout=60_000)
            assert "Done" in page.inner_text("#status") and page.inner_text("#error") == ""
            with page.expect_download() as download:
                page.click("#download")
            result = tmp_path / "download.jpg"
            download.value.save_as(result)
            page.wait_for_selector("#jobs td.status-done")
            screenshot = tmp_path / "web.png"
            page.screenshot(path=str(screenshot), full_page=True)
            if os.environ.get("NST_WEB_SCREENSHOT"):
                shutil.copy(screenshot, os.environ["NST_WEB_SCREENSHOT"])
        finally:
            browser.close()
    assert errors == []
    stylized, original = (np.asarray(Image.open(p).convert("RGB"), dtype=float) for p in (result, photo))
    assert stylized.shape == original.shape and np.abs(stylized - original).mean() > 5
    assert Image.open(screenshot).size[0] == 1280
