"""Train a fast style network (Johnson et al. 2016) with the noise stability loss (Rainy & de Berker 2018).

    python train.py style=udnie noise.pixels=1000 data=coco data.root=/data/coco/train2014
    python train.py -m style=udnie,starry_night noise.pixels=0,1000,5000
    python train.py trainer=ddp trainer.devices=4

Resume with ``ckpt_path=<run>/checkpoints/last.ckpt`` (the run goes on in its own folder). The exported
weights file (for infer.py) is written to ``export_path`` when training ends or stops (Ctrl-C included),
``checkpoints/best.pt`` beside ``best.ckpt``; their paths are printed.
"""

from __future__ import annotations

from nst.app.cli import hydra_entry
from nst.app.train import train

main = hydra_entry("train")(train)

if __name__ == "__main__":
    main()
