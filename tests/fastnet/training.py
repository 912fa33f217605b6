"""Training in-process as train.py does, minus loggers and run files, with a callback that records what the
network saw; shared by the tests of the module and of the callbacks."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig
from torch import nn

from nst.app.builders import build_module
from nst.app.config import build
from nst.fastnet.module import StyleTransferModule


class Recorder(Callback):
    """Keeps every step's logged metrics and the batch sizes the network saw."""

    def __init__(self) -> None:
        self.metrics: list[dict[str, float]] = []
        self.net_batches: list[int] = []
        self.net_inputs: list[torch.Tensor] = []
        self.initial: dict[str, torch.Tensor] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: StyleTransferModule) -> None:
        self.initial = {k: v.clone() for k, v in pl_module.state_dict().items()}

        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            if module.training:
                self.net_batches.append(len(args[0]))
                self.net_inputs.append(args[0].detach().clone())

        self._handle = pl_module.net.register_forward_pre_hook(hook)

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        self.metrics.append({k: float(v) for k, v in trainer.callback_metrics.items()} | {"step": trainer.global_step})

    def on_fit_end(self, trainer: L.Trainer, pl_module: StyleTransferModule) -> None:
        self._handle.remove()


def fit(
    cfg: DictConfig,
    ckpt_path: str | None = None,
    config_callbacks: bool = True,
    callbacks: Sequence[Callback] = (),
    **trainer_args: object,
):
    """What train.py does, minus loggers and run files, with extra ``callbacks``; returns (trainer, module,
    datamodule, recorder)."""
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = build(cfg.data)
    module = build_module(cfg)
    recorder = Recorder()
    built = [build(c) for c in cfg.callbacks.values() if c is not None] if config_callbacks else []
    if not config_callbacks:
        trainer_args["enable_checkpointing"] = False
    trainer = build(cfg.trainer, logger=False, callbacks=[*built, *callbacks, recorder], **trainer_args)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True if ckpt_path else None)
    return trainer, module, datamodule, recorder
