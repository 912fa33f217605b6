"""Stylize images and videos with a trained fast network, or export it.

``python infer.py weights=style.pt input=clip.mp4 output=out.mp4`` (images, videos, GIFs, folders);
``python infer.py weights=style.pt export=onnx output=style.onnx`` (also ``export=torchscript``).

``weights`` is the file train.py exports (``train_style.pt``, ``checkpoints/best.pt``), one of its checkpoints
(``checkpoints/best.ckpt``, ``last.ckpt``), or a foreign format (see nst/fastnet/foreign_weights.py).
"""

from __future__ import annotations

from nst.app.cli import hydra_entry
from nst.app.infer import infer

main = hydra_entry("infer")(infer)

if __name__ == "__main__":
    main()
