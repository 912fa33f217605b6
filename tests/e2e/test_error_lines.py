"""User errors of the entry points: one line, in words, the path once, and the run folder a failed run left."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_an_empty_video_is_one_line_naming_the_file_once_and_the_run_folder(tmp_path: Path) -> None:
    empty = tmp_path / "clip.mp4"
    empty.write_bytes(b"")
    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, str(ROOT / "optimize.py"), f"content={empty}", f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    line = done.stderr.strip()
    assert line.count("\n") == 0 and line.startswith(f"error: cannot read video {empty}: the file is empty"), line
    assert line.count(str(empty)) == 1 and "Errno" not in line
    assert line.endswith(f"(run folder: {run_dir})") and any(run_dir.iterdir())  # the config and log it left

