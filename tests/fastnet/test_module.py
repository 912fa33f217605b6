"""StyleTransferModule and its callbacks, in-process with a tiny net, a random VGG and 32-64 px images."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig
from PIL import Image
from torch import nn

from nst.app.builders import build_module
from nst.app.config import CONF_DIR, build
from nst.errors import NSTError
from nst.fastnet.callbacks import ExportWeights, SampleImages, sample_grid
from nst.fastnet.export import load_exported
from nst.fastnet.module import FROZEN_PREFIX, StyleTransferModule
from nst.fastnet.noise import PROBE_PIXELS, probe_noise
from tests.helpers import copy_config

TERMS = ("content", "style", "tv", "noise", "total")
pytestmark = pytest.mark.filterwarnings(
    r"ignore:.*(does not have many workers|module\(s\) in eval mode|random weights|LeafSpec|is not empty).*"
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one thread avoids OpenMP overhead (and stalls when the 2 cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def config(root_configs, tmp_path: Path):
    """``config(*overrides, out=tmp_path)``: the session's tiny train config (random VGG, 32 px crops, a tiny
    net, no loggers) with ``key=value`` overrides."""

    def make(*overrides: str, out: Path | None = None) -> DictConfig:
        return copy_config(root_configs["train"], out or tmp_path, *overrides)

    return make


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


def fit(cfg: DictConfig, ckpt_path: str | None = None, config_callbacks: bool = True, **trainer_args: object):
    """What train.py does, minus loggers and run files; returns (trainer, module, datamodule, recorder)."""
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = build(cfg.data)
    module = build_module(cfg)
    recorder = Recorder()
    callbacks = [build(c) for c in cfg.callbacks.values() if c is not None] if config_callbacks else []
    if not config_callbacks:
        trainer_args["enable_checkpointing"] = False
    trainer = build(cfg.trainer, logger=False, callbacks=[*callbacks, recorder], **trainer_args)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True if ckpt_path else None)
    return trainer, module, datamodule, recorder




@pytest.fixture(scope="module")
def five_steps(root_configs, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("run")
    cfg = copy_config(
        root_configs["train"],
        out,
        "trainer.max_steps=5",
        "trainer.val_check_interval=5",
        "callbacks.checkpoint_last.every_n_train_steps=100",  # last.ckpt must still appear at the end
        "callbacks.sample_images.every_n_steps=5",
        "noise.pixels=100",
    )
    trainer, module, datamodule, recorder = fit(cfg)
    return cfg, out, recorder.initial, trainer, module, datamodule, recorder


def test_five_steps_log_finite_terms_that_add_up(five_steps) -> None:
    *_, trainer, _, _, recorder = five_steps
    assert [m["step"] for m in recorder.metrics] == [1, 2, 3, 4, 5]
    for metrics in recorder.metrics:
        values = {t: metrics[f"loss/{t}"] for t in TERMS}
        assert all(math.isfinite(v) for v in values.values()), values
        assert values["content"] > 0 and values["style"] > 0 and values["tv"] > 0 and values["noise"] > 0
        parts = values["content"] + values["style"] + values["tv"] + values["noise"]
        assert values["total"] == pytest.approx(parts, rel=1e-4)
    final = trainer.callback_metrics  # validation ran after step 5
    assert math.isfinite(float(final["val/loss/total"])) and float(final["val/stability"]) > 0


def test_five_steps_train_the_net_only(five_steps) -> None:
    _, _, initial, _, module, *_ = five_steps
    state = module.state_dict()
    changed = [k for k in state if k.startswith("net.") and not torch.equal(state[k], initial[k])]
    assert len(changed) > 0.8 * sum(k.startswith("net.") for k in state)
    vgg = [k for k in state if k.startswith("criterion.encoder.")]
    assert vgg and all(torch.equal(state[k], initial[k]) for k in vgg)
    assert not module.criterion.encoder.training and module.net.training


def test_checkpoints_leave_vgg_out_and_reload_strictly(five_steps) -> None:
    cfg, out, *_ = five_steps
    last, best = out / "checkpoints" / "last.ckpt", out / "checkpoints" / "best.ckpt"
    assert last.is_file() and best.is_file()
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 5
    assert not [k for k in ckpt["state_dict"] if k.startswith(FROZEN_PREFIX)]
    assert any(k.startswith("net.") for k in ckpt["state_dict"])
    assert last.stat().st_size < 5_000_000  # VGG-19 up to relu4_3 alone would be ~40 MB

    fresh = build_module(cfg)
    fresh.on_load_checkpoint(ckpt)  # what Lightning calls before its strict load_state_dict
    fresh.load_state_dict(ckpt["state_dict"], strict=True)
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    del ckpt["state_dict"][next(k for k in ckpt["state_dict"] if k.startswith("net."))]
    fresh.on_load_checkpoint(ckpt)
    with pytest.raises(RuntimeError, match="Missing key"):
        fresh.load_state_dict(ckpt["state_dict"], strict=True)


def test_export_rebuilds_the_trained_net(five_steps) -> None:
    cfg, out, _, trainer, module, datamodule, _ = five_steps
    exported = next(c for c in trainer.callbacks if isinstance(c, ExportWeights)).exported
    assert exported == Path(cfg.export_path) and exported.parent == out
    net = load_exported(exported)  # weights_only=True inside
    x = datamodule.val_images()
    module.net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), module.net(x))


def test_sample_grid_png_written(five_steps) -> None:
    _, out, _, trainer, *_ = five_steps
    sampler = next(c for c in trainer.callbacks if isinstance(c, SampleImages))
    assert sampler.saved == [out / "samples" / "step_0000005.png"]  # step 5 once, not again at train end
    with Image.open(sampler.saved[0]) as img:
        assert img.size == (4 * 34 + 2, 4 * 34 + 2)  # 2 val images padded to 4 columns, 4 rows, 32 px tiles




@pytest.mark.parametrize("pixels", [0, 50])
def test_noise_pixels_zero_disables_the_term_and_the_noisy_half(config, tmp_path: Path, pixels: int) -> None:
    cfg = config(f"noise.pixels={pixels}", "trainer.max_steps=2")
    _, module, _, recorder = fit(cfg, config_callbacks=False, limit_val_batches=0)
    assert module.noise_enabled == (pixels > 0)
    assert recorder.net_batches == [4 if pixels else 2] * 2  # batch 2, doubled by the noisy copy
    assert all(("loss/noise" in m) == (pixels > 0) for m in recorder.metrics)


def _noise_masks(recorder: Recorder) -> list[torch.Tensor]:
    """Where each step's noisy half differs from its clean half, per image."""
    return [(x[len(x) // 2 :] != x[: len(x) // 2]).any(1) for x in recorder.net_inputs]


@pytest.mark.parametrize("per_epoch", [True, False])
def test_noise_per_epoch_or_per_batch(config, tmp_path: Path, per_epoch: bool) -> None:
    # 6 training images at batch 2: 3 steps per epoch, 6 steps = 2 epochs
    cfg = config("noise.pixels=40", f"noise.per_epoch={per_epoch}", "trainer.max_steps=6")
    recorder = fit(cfg, config_callbacks=False, limit_val_batches=0)[3]
    masks = _noise_masks(recorder)
    assert all(int(m.sum(dim=(1, 2)).min()) == 40 == int(m.sum(dim=(1, 2)).max()) for m in masks)
    first = [m[0] for m in masks]
    if per_epoch:
        assert all(torch.equal(m[0], m[1]) for m in masks)  # one noise image for the whole batch
        assert torch.equal(first[0], first[1]) and torch.equal(first[0], first[2])
        assert torch.equal(first[3], first[5]) and not torch.equal(first[0], first[3])
    else:
        assert not torch.equal(masks[0][0], masks[0][1])
        assert len({tuple(m.flatten().tolist()) for m in first}) == 6
    again = fit(cfg, config_callbacks=False, limit_val_batches=0)[3]  # seeded: the same noise again
    assert all(torch.equal(a, b) for a, b in zip(_noise_masks(again), masks))


def _popping(config, out: Path, pixels: int) -> tuple[float, float]:
    cfg = config(f"noise.pixels={pixels}", "trainer.max_steps=30", out=out)
    _, module, datamodule, _ = fit(cfg, config_callbacks=False, limit_val_batches=0)
    train_images = [datamodule.train_set[i] for i in range(len(datamodule.train_set))]
    x = torch.cat([datamodule.val_images(), torch.stack(train_images)])  # all 8 images
    noise = probe_noise(x.shape, seed="test")
    with torch.no_grad():
        clean, noisy = module.net(x), module.net((x + noise).clamp(0, 1))
    return float((clean - noisy).pow(2).mean()), float(clean.std())


def test_stability_term_reduces_popping(config, tmp_path: Path) -> None:
    """Rainy & de Berker 2018: after a few dozen seeded steps, f(x+n) stays closer to f(x) with the term on."""
    off, off_std = _popping(config, tmp_path / "off", 0)
    on, on_std = _popping(config, tmp_path / "on", 300)
    assert on < 0.5 * off, (on, off)
    assert on_std > 0.5 * off_std  # stable because it learned to ignore noise, not by going flat




def test_resume_from_last_continues_the_step_count(config, tmp_path: Path) -> None:
    cfg = config(
        "trainer.max_steps=3",
        "callbacks.checkpoint_last.every_n_train_steps=100",
        "callbacks.sample_images=null",
        "callbacks.export_weights=null",
    )
    fit(cfg, limit_val_batches=0)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 3
    cfg.trainer.max_steps = 5
    trainer, _, _, recorder = fit(cfg, ckpt_path=str(last), limit_val_batches=0)
    assert [m["step"] for m in recorder.metrics] == [4, 5]  # two new steps, numbered on from 3
    assert trainer.global_step == 5
    assert torch.load(last, weights_only=True)["global_step"] == 5




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


def test_blended_style_images_scaled_to_the_crop_size(config, tmp_path: Path) -> None:
    styles = CONF_DIR.parent / "assets" / "styles"
    pair = f"style.image=[{styles / 'udnie.jpg'},{styles / 'great_wave.jpg'}]"
    module = build_module(config(pair, "style.blend=[3,1]", "data.image_size=48"))
    assert [max(img.shape[-2:]) for img in module.style_images] == [48, 48]  # long side = crop size
    module._set_style()
    single = build_module(config(f"style.image={styles / 'udnie.jpg'}", "data.image_size=48"))
    single._set_style()
    other = build_module(config(f"style.image={styles / 'great_wave.jpg'}", "data.image_size=48"))
    other._set_style()
    for layer, gram in module.criterion.target_grams.items():
        expected = 0.75 * single.criterion.target_grams[layer] + 0.25 * other.criterion.target_grams[layer]
        torch.testing.assert_close(gram, expected)


def test_missing_style_image_is_a_clear_error(config, tmp_path: Path) -> None:
    cfg = config(f"style.image={tmp_path / 'nope.jpg'}")
    with pytest.raises(NSTError, match="nope.jpg"):
        build_module(cfg)
