"""Train a fast style network (Johnson et al. 2016) with the noise stability loss (Rainy & de Berker 2018).

    python train.py style=udnie noise.pixels=1000 data=coco data.root=/data/coco/train2014
    python train.py -m style=udnie,starry_night noise.pixels=0,1000,5000
    python train.py trainer=ddp trainer.devices=4

Resume with ``ckpt_path=<run>/checkpoints/last.ckpt``; the exported weights file (for infer.py) is
written to ``export_path`` when training ends and its path is printed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig

from nst.app.builders import build_module
from nst.app.cli import hydra_entry
from nst.app.config import build, plain, style_paths
from nst.app.run_info import git_commit, resolved_dict, resolved_yaml
from nst.errors import NSTError
from nst.fastnet.callbacks import ExportWeights, RunFiles
from nst.fastnet.loggers import build_loggers, close_loggers
from nst.fastnet.module import seed_training

# Lightning's advice to raise num_workers is noise for the small test/smoke setups; real configs set it.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
# The frozen VGG inside the criterion stays in eval mode on purpose (nst.vgg.VGGFeatures.train).
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")


def train(cfg: DictConfig) -> float | None:
    """Fit the network described by ``cfg``; return ``cfg.optimized_metric``'s last value (for sweepers)."""
    seed_training(cfg.seed)
    torch.set_float32_matmul_precision("high")  # TF32 on Ampere+ GPUs; no effect on the CPU
    run_dir = Path(cfg.paths.output_dir)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path and not Path(ckpt_path).is_file():
        raise NSTError(f"ckpt_path: no such checkpoint {ckpt_path}; use e.g. <run dir>/checkpoints/last.ckpt")
    datamodule = build(cfg.data)
    datamodule.setup("fit")  # a missing dataset is reported before VGG-19 is loaded (or downloaded)
    module = build_module(cfg)
    callbacks = [build(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks.append(RunFiles(run_dir, resolved_dict(cfg), resolved_yaml(cfg), git_commit(), style_paths(cfg.style)))
    loggers = build_loggers(plain(cfg.get("logger")), run_dir)
    trainer = build(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    failed = True
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        failed = False
    finally:
        close_loggers(loggers, failed=failed)
    if trainer.is_global_zero:
        for callback in callbacks:
            if isinstance(callback, ExportWeights) and callback.exported:
                print(f"exported weights: {callback.exported}", flush=True)
    metric = trainer.callback_metrics.get(cfg.get("optimized_metric") or "")
    return float(metric) if metric is not None else None


main = hydra_entry("train")(train)

if __name__ == "__main__":
    main()
