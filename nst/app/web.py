"""web.py's body: the settings of conf/web.yaml, then the page's server (:mod:`nst.web`) until Ctrl-C."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig

from nst.app.config import PROJECT_ROOT
from nst.errors import NSTError
from nst.web.settings import WebSettings


def web_settings(cfg: DictConfig) -> WebSettings:
    """The server's settings from the config; the token may come from the environment (NST_WEB_TOKEN)."""
    weights = Path(str(cfg.weights)).expanduser() if cfg.get("weights") else None
    settings = WebSettings(
        jobs_dir=Path(str(cfg.jobs_dir)).expanduser().resolve(), styles_dir=PROJECT_ROOT / "assets" / "styles",
        weights=weights, host=str(cfg.host), port=int(cfg.port),
        token=str(cfg.token) if cfg.get("token") else os.environ.get("NST_WEB_TOKEN") or None,
        device=str(cfg.device), max_upload_mb=float(cfg.max_upload_mb), max_pixels=int(cfg.max_pixels),
        max_video_seconds=float(cfg.max_video_seconds), max_size=int(cfg.max_size),
        max_size_limit=int(cfg.max_size_limit), iterations=int(cfg.iterations), recent_jobs=int(cfg.recent_jobs),
        infer_overrides=[str(o) for o in cfg.infer_overrides],
        optimize_overrides=[str(o) for o in cfg.optimize_overrides],
    )
    settings.check()
    if not 0 < settings.port < 65536:
        raise NSTError(f"port={settings.port} is not a port; use 1-65535 (8000 by default)")
    return settings


def serve(cfg: DictConfig) -> None:
    """Start the server and print where the page is."""
    import uvicorn

    from nst.web.server import create_app

    settings = web_settings(cfg)
    app = create_app(settings)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    query = "?token=YOUR_TOKEN" if settings.token else ""
    print(f"nst web page: http://{host}:{settings.port}/{query}  (jobs in {settings.jobs_dir}; Ctrl-C stops)",
          flush=True)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    except SystemExit as exc:  # uvicorn exits when it cannot bind the port
        raise NSTError(f"cannot serve on {settings.host}:{settings.port} (in use?); choose another port=") from exc
