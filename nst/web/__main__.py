"""``python -m nst.web``: the same as ``python web.py`` (conf/web.yaml, the same overrides)."""

from nst.app.cli import hydra_entry
from nst.app.web import serve

if __name__ == "__main__":
    hydra_entry("web")(serve)()
