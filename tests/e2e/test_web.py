"""``python web.py`` end to end: it prints the page's address and serves it; refusals are one ``error:`` line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import load_entry

ROOT = Path(__file__).resolve().parents[2]


def test_web_py_prints_its_address_and_serves_the_page(tmp_path: Path, python: str) -> None:
    command = [python, str(ROOT / "web.py"), "port=18765", f"jobs_dir={tmp_path / 'jobs'}",
               f"weights={tmp_path / 'none'}", f"hydra.run.dir={tmp_path / 'run'}"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = server.stdout.readline()
        assert line.startswith("nst web page: http://127.0.0.1:18765/"), line + server.stderr.read()
        page = ""
        for _ in range(100):  # uvicorn binds just after the line is printed
            try:
                page = urllib.request.urlopen("http://127.0.0.1:18765/", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "<title>nst" in page
        styles = json.load(urllib.request.urlopen("http://127.0.0.1:18765/api/styles", timeout=5))
        assert styles["fast"] is False and "only optimize" in styles["fast_message"]
    finally:
        server.terminate()
        server.wait(10)
    assert (tmp_path / "jobs").is_dir() and list((tmp_path / "jobs").iterdir()) == []


@pytest.mark.parametrize(("args", "line"), [
    (["host=0.0.0.0"], "error: host=0.0.0.0 lets other machines reach this server: give it a token (token=SECRET "
                       "or the environment variable NST_WEB_TOKEN), or leave host=127.0.0.1"),
    (["port=0"], "error: port=0 is not a port; use 1-65535 (8000 by default)"),
])
def test_refusals_are_one_line(args: list[str], line: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("NST_WEB_TOKEN", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", ["web.py", *args, f"jobs_dir={tmp_path / 'jobs'}",
                                      f"hydra.run.dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as exc:
        load_entry("web").main()
    assert exc.value.code == 1
    assert capsys.readouterr().err.strip() == f"{line} (run folder: {tmp_path / 'run'})"  # Hydra's record is there
    assert not (tmp_path / "jobs").exists()
