"""Lightning callbacks that keep a training run's files: ``last.ckpt`` at the end, the exported weights file
(and ``best.pt`` beside ``best.ckpt``), and the run's config / git commit / style image(s).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger

from nst.errors import NSTError
from nst.fastnet.weights import export_checkpoint, export_weights
from nst.io.files import atomic_path


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt`` every ``every_n_train_steps`` steps *and* when training ends, so a run stopped by
    ``max_steps`` resumes (``ckpt_path=.../last.ckpt``) exactly where it stopped."""

    _at_train_end = False

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.save_last or trainer.fast_dev_run or self.dirpath is None:
            return
        if getattr(self, "_last_global_step_saved", -1) == trainer.global_step and self.last_model_path:
            return
        path = os.path.join(self.dirpath, f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}")
        self.last_model_path = path
        self._at_train_end = True
        try:
            trainer.save_checkpoint(path, weights_only=False)  # a full checkpoint: optimizer and loops too
        finally:
            self._at_train_end = False

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Lightning counts logged steps (``_batches_that_stepped``) up by one when it resumes, because its own
        checkpoints are written before that counter moves; one written at train end comes after, so the resumed
        curves would skip a step. Store it as Lightning's own checkpoints do (checked by the resume test)."""
        loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
        if self._at_train_end and loop.get("_batches_that_stepped", 0) > 0:
            loop["_batches_that_stepped"] -= 1


class ExportWeights(Callback):
    """The small ``{model_args, state_dict}`` file that inference loads with ``weights_only=True`` (nanoGPT
    style), written atomically from rank 0 with its path printed: when training ends, and when it stops on an
    exception, Ctrl-C included (Lightning's ``on_exception``). Beside each monitored checkpoint
    (``checkpoints/best.ckpt``) goes its export too (``best.pt``)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.exported: Path | None = None
        self.exported_best: list[Path] = []

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self._export_last(pl_module)
            self._export_best(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Save what the run has learnt so far (weights that went NaN/inf are not worth a file); a failing
        export must not hide the exception itself."""
        if not trainer.is_global_zero:
            return
        print(f"training stopped ({type(exception).__name__}) at step {trainer.global_step}", flush=True)
        net = getattr(pl_module, "net", pl_module)
        try:
            if all(torch.isfinite(p).all() for p in net.parameters()):
                self._export_last(pl_module)
            else:
                print("last weights not exported: they hold NaN or inf", flush=True)
            self._export_best(trainer)
        except (NSTError, OSError, RuntimeError) as exc:
            print(f"weights not exported: {exc}", flush=True)

    def _export_last(self, pl_module: L.LightningModule) -> None:
        self.exported = export_weights(getattr(pl_module, "net", pl_module), self.path)
        print(f"exported weights: {self.exported}", flush=True)

    def _export_best(self, trainer: L.Trainer) -> None:
        for callback in trainer.checkpoint_callbacks:
            best = Path(getattr(callback, "best_model_path", "") or "")
            if getattr(callback, "monitor", None) and best.suffix == ".ckpt" and best.is_file():
                self.exported_best.append(export_checkpoint(best, best.with_suffix(".pt")))
                print(f"exported best weights ({callback.monitor}): {self.exported_best[-1]}", flush=True)


class RunFiles(Callback):
    """Save what reproduces a run next to it, on rank 0 when fitting starts: the resolved config
    (``config.yaml``), the git commit (``git_commit.txt``) and a copy of the style image(s) (``style/``).
    The config and commit also go to every logger's hyperparameters; the style image to W&B.

    Args:
        run_dir: the run folder.
        config: the resolved config as plain data (logged as hyperparameters).
        config_yaml: the same as YAML text (written as ``config.yaml``).
        commit: the git commit of the code (see :func:`nst.app.run_info.git_commit`).
        style_paths: the style image file(s).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        config: Mapping[str, Any],
        config_yaml: str,
        commit: str,
        style_paths: Sequence[str | os.PathLike],
    ):
        self.run_dir = Path(run_dir)
        self.config = dict(config)
        self.config_yaml = config_yaml
        self.commit = commit
        self.style_paths = [Path(p) for p in style_paths]

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        for name, text in (("git_commit.txt", self.commit + "\n"), ("config.yaml", self.config_yaml)):
            with atomic_path(self.run_dir / name) as tmp:
                tmp.write_text(text)
        copies = []
        for i, src in enumerate(self.style_paths):
            name = src.name if len(self.style_paths) == 1 else f"{i}_{src.name}"
            with atomic_path(self.run_dir / "style" / name) as tmp:
                shutil.copyfile(src, tmp)
            copies.append(self.run_dir / "style" / name)
        params = {"git_commit": self.commit, **self.config}
        for logger in trainer.loggers:
            logger.log_hyperparams(params)
            if isinstance(logger, WandbLogger):
                logger.log_image(key="style", images=[str(p) for p in copies], step=trainer.global_step)
