"""A callback that train.py subprocesses load through the config (``+callbacks.probe=...``): each rank saves
the batches its network saw (clean and noisy halves) and its final weights, for the DDP test."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import torch


class RecordNetInputs(L.Callback):
    """Writes ``<dirpath>/rank<R>.pt``: ``inputs`` (one (2B, 3, S, S) tensor per step) and ``net`` (state dict)."""

    def __init__(self, dirpath: str | os.PathLike) -> None:
        self.dirpath = Path(dirpath)
        self.inputs: list[torch.Tensor] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        def hook(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            if module.training:
                self.inputs.append(args[0].detach().cpu().clone())

        pl_module.net.register_forward_pre_hook(hook)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        net = {k: v.detach().cpu() for k, v in pl_module.net.state_dict().items()}
        torch.save({"inputs": self.inputs, "net": net}, self.dirpath / f"rank{trainer.global_rank}.pt")
