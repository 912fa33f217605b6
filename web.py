"""A local web page for style transfer: drop a photo or a clip, pick a painting, watch it work, download it.

    python web.py                          # http://127.0.0.1:8000/
    python web.py port=8080 weights=outputs/train/<run>/train_style.pt
    NST_WEB_TOKEN=secret python web.py host=0.0.0.0     # other machines too, with a token

Every key is in conf/web.yaml; docs/web.md describes the page and its HTTP API.
"""

from __future__ import annotations

from omegaconf import DictConfig

from nst.app.cli import hydra_entry
from nst.app.web import serve


@hydra_entry("web")
def main(cfg: DictConfig) -> None:
    serve(cfg)


if __name__ == "__main__":
    main()
