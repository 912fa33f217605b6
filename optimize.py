"""Gatys et al. 2016 neural style transfer for one still image, by optimising its pixels (no Lightning).

    python optimize.py                                        # bundled photo + style=udnie -> run dir
    python optimize.py content=photo.jpg style=starry_night
    python optimize.py content=photo.jpg style.image=my_painting.png output=out.png
    python optimize.py -m loss.style_weight=1e5,1e6,1e7       # multirun: one image per value
    python optimize.py content=clip.mp4 video.method=consistent   # a video (nst/app/optimize_video.py)

Every key is in conf/optimize.yaml. The run dir gets the image (unless ``output`` points elsewhere), the
resolved config, and with ``logger=csv`` (default) the loss curves as CSV and PNG.
"""

from __future__ import annotations

from nst.app.cli import hydra_entry
from nst.app.optimize import optimize

main = hydra_entry("optimize")(optimize)

if __name__ == "__main__":
    main()
