"""One training run of train.py, callable from other apps too (evaluate.py trains its fast networks with it)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig

from nst.app.builders import build_module
from nst.app.config import build, plain, training_style_paths
from nst.app.device import check_trainer_precision
from nst.app.launch import check_ddp_launch, checkpoint_step, in_multirun
from nst.app.run_info import git_commit, resolved_dict, resolved_yaml
from nst.fastnet.callbacks.checkpoints import RunFiles
from nst.fastnet.callbacks.loggers import build_loggers, close_loggers
from nst.fastnet.module import seed_training

# Lightning's advice to raise num_workers is noise for tests and smoke runs (data.num_workers=0); null = auto.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
# The frozen VGG inside the criterion stays in eval mode on purpose (nst.encoders.vgg.VGGFeatures.train).
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")


def train(cfg: DictConfig) -> float | None:
    """Fit the network described by ``cfg``; return ``cfg.optimized_metric``'s last value (for sweepers)."""
    seed_training(cfg.seed)
    # TF32 matmuls on Ampere+ GPUs, the float32 Gram matrices included (~1e-3 relative); no effect on the CPU.
    torch.set_float32_matmul_precision("high")
    run_dir = Path(cfg.paths.output_dir)
    ckpt_path = cfg.get("ckpt_path")
    resume_step = checkpoint_step(ckpt_path)  # None for a fresh run; a missing checkpoint is an error here
    if resume_step is not None:  # going on in the run's own folder is the point of resuming
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    check_ddp_launch(cfg.trainer, in_multirun())
    precision = check_trainer_precision(cfg.trainer.get("accelerator", "auto"), cfg.trainer.get("precision", 32))
    datamodule = build(cfg.data)
    datamodule.setup("fit")  # a missing dataset is reported before the VGG is loaded (or downloaded)
    module = build_module(cfg)
    callbacks = [build(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    styles = training_style_paths(cfg.style)
    callbacks.append(RunFiles(run_dir, resolved_dict(cfg), resolved_yaml(cfg), git_commit(), styles))
    loggers = build_loggers(plain(cfg.get("logger")), run_dir, resume_step=resume_step)
    trainer = build(cfg.trainer, precision=precision, logger=loggers or False, callbacks=callbacks)
    failed = True
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        failed = False
    finally:
        close_loggers(loggers, failed=failed)
    metric = trainer.callback_metrics.get(cfg.get("optimized_metric") or "")
    return float(metric) if metric is not None else None
