"""Evaluation report: consistency, style and speed of every method on one clip, in one command.

    python evaluate.py content=assets/video/sintel_mountain_2.mp4 style=udnie
    python evaluate.py content=clip.gif style.image=painting.jpg max_size=256 video.max_frames=30 \
        methods=[naive,temporal,consistent,fast_noise]
    python evaluate.py -m style=udnie,starry_night                  # one report per style

Every key is in conf/evaluate.yaml (optimize.py's keys, plus ``methods`` and the fast networks'). The run folder
gets ``report.md``, ``report.json``, the plots, each method's video and ``grid.mp4`` with all methods side by
side; rerunning the command with ``hydra.run.dir=<run folder>`` reuses what is finished (nst/app/evaluate.py).
"""

from __future__ import annotations

from nst.app.cli import hydra_entry
from nst.app.evaluate import evaluate

main = hydra_entry("evaluate")(evaluate)

if __name__ == "__main__":
    main()
