"""The page's jobs: one folder each under the jobs folder, its record in ``job.json`` (written atomically on
every change of state, so the list survives a restart of the server), and one worker thread that runs them one
at a time while the server goes on answering.

A job is named by the server (128 random bits, :func:`secrets.token_hex`); a name that is not one of its own
never reaches a path. A job that fails is a record with its one-line reason (the traceback of an unexpected
failure goes to the job's ``error.txt``); the worker goes on with the next.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nst.errors import NSTError
from nst.io.files import atomic_path

ID_PATTERN = re.compile(r"[0-9a-f]{32}")
#: The hidden folders an upload is checked in before it becomes a job (nst.web.server).
STAGING_PATTERN = re.compile(r"\.(probe-[0-9a-f]{32}|[0-9a-f]{32}\.staging)")
RECORD = "job.json"
ACTIVE = ("queued", "running")
#: How often a running job's progress is written to disk (the page reads it from memory, live).
SAVE_EVERY_S = 2.0


class JobCancelled(Exception):
    """Raised inside a running job when the user cancelled it."""


class JobStore:
    """The records of all jobs in ``root``: in memory for the page, on disk for the next start."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.jobs: dict[str, dict[str, Any]] = {}
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and STAGING_PATTERN.fullmatch(folder.name):
                shutil.rmtree(folder, ignore_errors=True)  # an upload a stopped server was still checking
                continue
            record = self._read(folder)
            if record is not None:
                if record["status"] == "running":  # the server stopped while it ran
                    record.update(status="failed", error="the server stopped while this job ran; submit it again")
                    self._write(record)
                self.jobs[record["id"]] = record

    def _read(self, folder: Path) -> dict[str, Any] | None:
        if not ID_PATTERN.fullmatch(folder.name) or not (folder / RECORD).is_file():
            return None
        try:
            record = json.loads((folder / RECORD).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("id") == folder.name else None

    def _write(self, record: dict[str, Any]) -> None:
        with atomic_path(self.root / record["id"] / RECORD) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n")

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(16)

    def folder(self, job_id: str) -> Path | None:
        """The folder of a known job; None for any other name (checked before it touches a path)."""
        if not ID_PATTERN.fullmatch(job_id):
            return None
        with self.lock:
            return self.root / job_id if job_id in self.jobs else None

    def add(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.jobs[record["id"]] = record
            self._write(record)

    def update(self, job_id: str, persist: bool = True, **fields: Any) -> None:
        with self.lock:
            record = self.jobs[job_id]
            record.update(fields)
            if persist:
                self._write(record)

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.lock:
            record = self.jobs.get(job_id)
            return json.loads(json.dumps(record)) if record is not None else None

    def recent(self, limit: int) -> list[dict[str, Any]]:
        with self.lock:
            records = sorted(self.jobs.values(), key=lambda r: r["created"], reverse=True)[:limit]
            return json.loads(json.dumps(records))

    def remove(self, job_id: str) -> None:
        with self.lock:
            self.jobs.pop(job_id, None)
            shutil.rmtree(self.root / job_id, ignore_errors=True)


class Progress:
    """What a running job reports: units done of the total, seconds per unit, seconds left; it raises
    :class:`JobCancelled` at the next report after a cancel."""

    def __init__(self, store: JobStore, job_id: str, cancel: threading.Event, unit: str) -> None:
        self.store, self.job_id, self.cancel, self.unit = store, job_id, cancel, unit
        self.done, self.total, self.begin = 0, None, time.perf_counter()
        self.saved = 0.0

    def start(self, total: int | None) -> None:
        """The work is planned: ``total`` units from now (the clock restarts here, after the setup)."""
        self.total, self.begin = total, time.perf_counter()
        self._report()

    def add(self, n: int) -> None:
        self.done += n
        self._report()

    def step(self, done: int, total: int) -> None:
        if self.total is None:
            self.begin = time.perf_counter()
        self.done, self.total = done, total
        self._report()

    def as_dict(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.begin
        per_unit = elapsed / self.done if self.done else None
        left = per_unit * max(self.total - self.done, 0) if per_unit is not None and self.total else None
        return {"done": self.done, "total": self.total, "unit": self.unit, "elapsed": round(elapsed, 2),
                "seconds_per_unit": per_unit and round(per_unit, 3), "seconds_left": left and round(left, 1)}

    def _report(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled
        now = time.perf_counter()
        persist = now - self.saved >= SAVE_EVERY_S
        self.saved = now if persist else self.saved
        self.store.update(self.job_id, persist=persist, progress=self.as_dict())


#: Runs one job: (folder, record, progress) -> fields to add to the record (result names, metrics).
Runner = Callable[[Path, dict[str, Any], Progress], dict[str, Any]]


class Worker:
    """One thread running the queued jobs in order, one at a time."""

    def __init__(self, store: JobStore, runner: Runner) -> None:
        self.store, self.runner = store, runner
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.current: str | None = None
        self.cancel_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="nst-web-worker", daemon=True)
        for record in sorted(store.jobs.values(), key=lambda r: r["created"]):
            if record["status"] == "queued":  # queued before a restart: still wanted
                self.queue.put(record["id"])
        self.thread.start()

    def submit(self, job_id: str) -> None:
        self.queue.put(job_id)

    def cancel(self, job_id: str) -> None:
        """Cancel a queued job now, a running one at its next progress report."""
        with self.store.lock:
            status = self.store.jobs[job_id]["status"]
            if status == "queued":
                self.store.update(job_id, status="cancelled", finished=time.time(), error="cancelled")
            elif status == "running" and self.current == job_id:
                self.cancel_event.set()

    def stop(self, timeout: float = 5.0) -> None:
        self.cancel_event.set()
        self.queue.put(None)
        self.thread.join(timeout)

    def _loop(self) -> None:
        while (job_id := self.queue.get()) is not None:
            with self.store.lock:
                record = self.store.get(job_id)
                if record is None or record["status"] != "queued":
                    continue
                self.current = job_id
                self.cancel_event.clear()
                self.store.update(job_id, status="running", started=time.time())
            self._run(job_id, record)
            self.current = None

    def _run(self, job_id: str, record: dict[str, Any]) -> None:
        folder = self.store.root / job_id
        progress = Progress(self.store, job_id, self.cancel_event, record.get("unit", "frame"))
        fields: dict[str, Any]
        try:
            fields = {"status": "done", **self.runner(folder, record, progress)}
        except JobCancelled:
            shutil.rmtree(folder / "work", ignore_errors=True)  # an optimization's unfinished frames
            fields = {"status": "cancelled", "error": "cancelled"}
        except NSTError as exc:
            fields = {"status": "failed", "error": _first_line(exc)}
        except Exception as exc:  # a crash of one job is its record; the server and the next jobs go on
            (folder / "error.txt").write_text(traceback.format_exc())
            fields = {"status": "failed", "error": f"{type(exc).__name__}: {_first_line(exc)}"}
        if job_id in self.store.jobs:  # not removed meanwhile
            self.store.update(job_id, finished=time.time(), progress=progress.as_dict(), **fields)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
