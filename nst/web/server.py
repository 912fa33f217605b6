"""The page's server: one static page (``static/``) and the HTTP API it uses (docs/web.md).

Jobs run through the same functions as infer.py and optimize.py (:mod:`nst.web.runner`) in one worker thread
(:mod:`nst.web.jobs`). Every refusal is ``{"error": "one line"}`` with a 4xx status.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from omegaconf import OmegaConf
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from nst.app.device import resolve_device
from nst.io.files import atomic_path
from nst.web.guard import Guard
from nst.web.jobs import JobStore, Worker
from nst.web.media import ACCEPTED, BadUpload, MediaInfo, probe, save_upload
from nst.web.plan import bundled_styles, job_config, parse_request
from nst.web.runner import CONFIG, run_job
from nst.web.settings import SPEED, WebSettings, find_networks, is_loopback

STATIC = Path(__file__).parent / "static"


class NotFound(BadUpload):
    def __init__(self, message: str) -> None:
        super().__init__(message, 404)


def create_app(settings: WebSettings) -> FastAPI:
    """The application, with its job store on ``settings.jobs_dir`` and its worker thread started."""
    store = JobStore(settings.jobs_dir)
    worker = Worker(store, run_job)
    networks, fast_message = find_networks(settings.weights)
    styles = bundled_styles(settings.styles_dir)
    device = resolve_device(settings.device).type
    thumbnails: dict[str, bytes] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        worker.stop()

    app = FastAPI(title="nst", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.store, app.state.worker, app.state.settings = store, worker, settings
    app.add_middleware(Guard, token=settings.token, local_only=is_loopback(settings.host),
                       max_upload_mb=settings.max_upload_mb)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(BadUpload)
    async def refused(_: Request, exc: BadUpload) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "the request is malformed; see docs/web.md for the API"}, 400)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/styles")
    def list_styles() -> dict[str, Any]:
        limits = {k: getattr(settings, k) for k in ("max_upload_mb", "max_pixels", "max_video_seconds", "max_size",
                                                     "max_size_limit", "iterations")}
        return {"styles": [{"name": n, "thumbnail": f"/api/styles/{n}/thumbnail"} for n in styles],
                "networks": [{"name": n.name, "styles": n.styles} for n in networks.values()],
                "fast": bool(networks), "fast_message": fast_message, "device": device,
                "speed": SPEED["cuda" if device == "cuda" else "cpu"], "limits": limits, "accepted": ACCEPTED}

    @app.get("/api/styles/{name}/thumbnail")
    def thumbnail(name: str) -> Response:
        if name not in styles:
            raise NotFound(f"no bundled style {name!r}")
        if name not in thumbnails:
            with Image.open(styles[name]) as img:
                img = img.convert("RGB")
                img.thumbnail((240, 240))
                buffer = io.BytesIO()
                img.save(buffer, "JPEG", quality=85)
            thumbnails[name] = buffer.getvalue()
        return Response(thumbnails[name], media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def read_form(request: Request) -> Any:
        try:
            return await request.form(max_files=2, max_fields=30)
        except BadUpload:
            raise
        except Exception:  # not a multipart form, or a malformed one
            raise BadUpload("send a multipart form with the file in the field 'input' (see docs/web.md)") from None

    def staged(upload: Any, folder: Path, name: str, what: str, images_only: bool = False) -> tuple[Path, MediaInfo]:
        if not isinstance(upload, UploadFile):
            raise BadUpload(f"no {what} in the form: send the file in the field {name!r}")
        raw = folder / f"{name}.upload"
        save_upload(upload.file, raw, settings.max_upload_mb, what)
        info = probe(raw, settings.max_pixels, settings.max_video_seconds, what, images_only)
        return raw.rename(folder / f"{name}{info.suffix}"), info

    @app.post("/api/probe")
    async def probe_upload(request: Request) -> dict[str, Any]:
        form = await read_form(request)
        folder = settings.jobs_dir / f".probe-{store.new_id()}"
        folder.mkdir(parents=True)
        try:
            return (await run_in_threadpool(staged, form.get("input"), folder, "input", "the file"))[1].as_dict()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def create(form: Any) -> dict[str, Any]:
        job_id = store.new_id()
        staging, folder = settings.jobs_dir / f".{job_id}.staging", settings.jobs_dir / job_id
        staging.mkdir(parents=True)
        try:  # everything in a hidden folder first: a refused job leaves nothing behind
            _, info = staged(form.get("input"), staging, "input", "the file")
            painting = form.get("style_file")
            painting = painting if isinstance(painting, UploadFile) and painting.filename else None
            style_path = staged(painting, staging, "style", "the painting", True)[0] if painting else None
            request = parse_request(form, settings, networks, styles, painting is not None, info)
            cfg = job_config(request, info, folder, settings, networks, styles,
                             folder / style_path.name if style_path else None)
            with atomic_path(staging / CONFIG) as tmp:
                tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True))
            os.rename(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        upload = form.get("input")
        record = {"id": job_id, "created": time.time(), "status": "queued", "error": None,
                  "name": _display_name(upload.filename), "input": info.as_dict(), "request": request.as_dict(),
                  "unit": "iteration" if request.method == "optimize" and info.kind == "image" else "frame",
                  "style": _style_label(request, painting is not None), "progress": None,
                  "result": None, "side_by_side": None, "metrics": None}
        store.add(record)
        snapshot = store.get(job_id)  # the worker changes the record from now on
        worker.submit(job_id)
        return snapshot

    @app.post("/api/jobs", status_code=201)
    async def create_job(request: Request) -> dict[str, Any]:
        return await run_in_threadpool(create, await read_form(request))

    @app.get("/api/jobs")
    def list_jobs() -> dict[str, Any]:
        return {"jobs": store.recent(settings.recent_jobs)}

    def known(job_id: str) -> tuple[Path, dict[str, Any]]:
        folder = store.folder(job_id)
        record = store.get(job_id) if folder is not None else None
        if folder is None or record is None:
            raise NotFound(f"no job {job_id[:40]!r} on this server")
        return folder, record

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: str) -> dict[str, Any]:
        return known(job_id)[1]

    @app.get("/api/jobs/{job_id}/result")
    def result(job_id: str, view: str = "result", download: bool = False) -> FileResponse:
        folder, record = known(job_id)
        if record["status"] != "done":
            raise BadUpload(f"job {job_id} has no result: it is {record['status']}", 409)
        name = record.get("side_by_side") if view == "side_by_side" else record["result"]
        path = (folder / str(name or "")).resolve()
        if not name or path.parent != folder.resolve() or not path.is_file():
            raise NotFound(f"job {job_id} has no {view.replace('_', ' ')}")
        label = f"{_safe(Path(record['name']).stem)}_{_safe(record['style'])}{path.suffix}"
        return FileResponse(path, filename=label, content_disposition_type="attachment" if download else "inline")

    @app.delete("/api/jobs/{job_id}")
    def delete_job(job_id: str) -> dict[str, Any]:
        _, record = known(job_id)
        if record["status"] in ("queued", "running"):
            worker.cancel(job_id)
            return {"id": job_id, "cancelled": True, "removed": False}
        store.remove(job_id)
        return {"id": job_id, "cancelled": False, "removed": True}

    return app


def _display_name(filename: str | None) -> str:
    """The upload's own name, for the page only (it never reaches a path)."""
    name = re.sub(r"[\x00-\x1f\x7f/\\]+", "_", Path(str(filename or "upload")).name)
    return name[-80:] or "upload"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:60] or "nst"


def _style_label(request: Any, painting: bool) -> str:
    first = "your painting" if painting else request.style
    if request.style2:
        return f"{first} {100 - round(request.blend * 100)}% + {request.style2} {round(request.blend * 100)}%"
    return str(first)
