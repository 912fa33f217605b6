"""Lightning callbacks (nst.fastnet.callbacks): sample grids (validation images or the user's own photos), and
the weights exported when training ends or stops on Ctrl-C."""

from __future__ import annotations

import signal
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from nst.errors import NSTError
from nst.fastnet.callbacks.checkpoints import ExportWeights
from nst.fastnet.callbacks.samples import SampleImages, sample_grid
from nst.fastnet.data import photo_batch
from nst.fastnet.noise import PROBE_PIXELS, probe_noise
from nst.fastnet.weights import load_exported
from tests.fastnet.training import fit
from tests.helpers import make_images

pytestmark = pytest.mark.filterwarnings(
    r"ignore:.*(does not have many workers|module\(s\) in eval mode|random weights|LeafSpec|is not empty).*"
)


def test_sample_grid_rows_show_inputs_stylized_and_popping() -> None:
    images = torch.rand(3, 3, 32, 40, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    noise = probe_noise((1, 3, 32, 40), seed=1)
    grid = sample_grid(nn.Identity(), images, noise, diff_gain=10.0)
    assert grid.shape == (3, 3 * 34 + 2, 4 * 42 + 2)

    def tile(row: int, col: int) -> torch.Tensor:
        return grid[:, 2 + row * 34 : 2 + row * 34 + 32, 2 + col * 42 : 2 + col * 42 + 40]

    torch.testing.assert_close(tile(0, 1), images[1])
    torch.testing.assert_close(tile(1, 2), images[2])  # identity "stylization"
    assert torch.equal(tile(0, 3), torch.ones(3, 32, 40))  # padding column
    changed = (tile(2, 3)[0] > 0).sum().item()  # the difference tile lights up exactly where noise is
    assert changed == min(PROBE_PIXELS, 32 * 40)



def test_sample_grids_show_the_users_own_photos(config, tmp_path: Path) -> None:
    photos = make_images(tmp_path / "mine", n=3, size=(60, 40), suffix=".jpg")
    paths = [str(photos / "img2.jpg"), str(photos / "img0.jpg")]
    cfg = config(
        f"callbacks.sample_images.paths=[{paths[0]},{paths[1]}]",
        "callbacks.sample_images.every_n_steps=1",
        "trainer.max_steps=2",
    )
    trainer, *_ = fit(cfg, limit_val_batches=0)
    sampler = next(c for c in trainer.callbacks if isinstance(c, SampleImages))
    assert [p.name for p in sampler.saved] == ["step_0000001.png", "step_0000002.png"]
    expected = photo_batch(paths, 32)  # the same photos, fixed for the whole run
    for saved in sampler.saved:
        with Image.open(saved) as grid:
            second = torch.from_numpy(np.asarray(grid)[2:34, 36:68].copy()).permute(2, 0, 1) / 255  # row 0, column 1
        torch.testing.assert_close(second, expected[1], atol=1 / 255 + 1e-6, rtol=0)
    with pytest.raises(NSTError, match="callbacks.sample_images.paths: no such image or folder .*nope.jpg"):
        SampleImages(tmp_path / "samples", paths=[tmp_path / "nope.jpg"])


class InterruptAt(L.Callback):
    """Raises KeyboardInterrupt after ``step`` steps, as Ctrl-C in the middle of training does."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def test_ctrl_c_exports_the_weights_and_best_pt_and_prints_their_paths(config, tmp_path: Path, capsys) -> None:
    cfg = config("trainer.max_steps=50", "trainer.val_check_interval=1", "callbacks.sample_images=null")
    handler = signal.getsignal(signal.SIGINT)  # Lightning ignores further Ctrl-C while it shuts down
    weights_at_step = {}

    class Keep(L.Callback):
        def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
            weights_at_step.update({k: v.clone() for k, v in pl_module.net.state_dict().items()})

    try:
        with pytest.raises(SystemExit) as info:  # Lightning's own exit after a KeyboardInterrupt
            fit(cfg, callbacks=[Keep(), InterruptAt(2)])
    finally:
        signal.signal(signal.SIGINT, handler)
    assert info.value.code == 1
    out = capsys.readouterr().out
    assert "training stopped (KeyboardInterrupt) at step 2" in out
    assert f"exported weights: {tmp_path / 'train_style.pt'}" in out
    assert f"exported best weights (val/loss/total): {tmp_path / 'checkpoints' / 'best.pt'}" in out
    exported = torch.load(tmp_path / "train_style.pt", weights_only=True)["state_dict"]
    torch.testing.assert_close(exported, weights_at_step, rtol=0, atol=0)  # the weights of step 2
    assert load_exported(tmp_path / "checkpoints" / "best.pt").model_args["base_channels"] == 8


def test_an_exception_with_broken_weights_exports_nothing(tmp_path: Path, capsys) -> None:
    net = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        net.weight[0, 0] = float("nan")
    trainer = type("T", (), {"is_global_zero": True, "global_step": 9, "checkpoint_callbacks": []})()
    ExportWeights(tmp_path / "w.pt").on_exception(trainer, net, RuntimeError("loss is NaN"))  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "training stopped (RuntimeError) at step 9" in out and "last weights not exported: they hold NaN" in out
    assert not (tmp_path / "w.pt").exists()
