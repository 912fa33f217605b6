"""StyleTransferModule trained in-process with a tiny net, a random VGG and 32-64 px images: loss terms,
checkpoints, noise, resume, and the recommended GPU settings run on the CPU."""

from __future__ import annotations

import copy
import functools
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from PIL import Image

import nst.app.device
from nst.app.builders import build_module
from nst.app.config import CONF_DIR
from nst.app.device import check_trainer_precision
from nst.errors import NSTError
from nst.fastnet.callbacks.checkpoints import ExportWeights
from nst.fastnet.callbacks.samples import SampleImages
from nst.fastnet.module import FROZEN_PREFIX, StyleTransferModule
from nst.fastnet.noise import probe_noise
from nst.fastnet.weights import load_exported
from tests.conftest import TEST_OVERRIDES
from tests.fastnet.training import Recorder, fit
from tests.helpers import compose_config, copy_config

TERMS = ("content", "style", "tv", "noise", "total")
pytestmark = pytest.mark.filterwarnings(
    r"ignore:.*(does not have many workers|module\(s\) in eval mode|random weights|LeafSpec|is not empty).*"
)


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
    exporter = next(c for c in trainer.callbacks if isinstance(c, ExportWeights))
    assert exporter.exported == Path(cfg.export_path) and exporter.exported.parent == out
    assert exporter.exported_best == [out / "checkpoints" / "best.pt"]  # beside best.ckpt
    checkpoints = out / "checkpoints"
    x = datamodule.val_images()
    module.net.eval()
    with torch.no_grad():
        for weights in (exporter.exported, checkpoints / "last.ckpt"):  # infer.py loads either (weights_only=True)
            torch.testing.assert_close(load_exported(weights)(x), module.net(x))
        best_pt, best_ckpt = load_exported(checkpoints / "best.pt"), load_exported(checkpoints / "best.ckpt")
        torch.testing.assert_close(best_pt(x), best_ckpt(x))


def test_every_checkpoint_stores_model_args(five_steps) -> None:
    _, out, _, _, module, _, _ = five_steps
    assert module.net.model_args == {"upsample": "deconv", "base_channels": 8, "num_residual": 1}
    for name in ("last.ckpt", "best.ckpt"):
        assert torch.load(out / "checkpoints" / name, weights_only=True)["model_args"] == module.net.model_args


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


def test_per_batch_noise_is_fresh_in_every_micro_batch_of_gradient_accumulation(config) -> None:
    # 6 images at batch 2, 2 micro-batches per step: steps after batches 0+1 and 2 (the epoch's end)
    cfg = config("noise.pixels=40", "trainer.max_steps=2", "trainer.accumulate_grad_batches=2")
    trainer, _, _, recorder = fit(cfg, config_callbacks=False, limit_val_batches=0)
    assert trainer.global_step == 2 and len(recorder.net_inputs) == 3
    first = [tuple(m[0].flatten().tolist()) for m in _noise_masks(recorder)]
    assert len(set(first)) == 3  # batches 0 and 1 share global step 0, yet get their own noise


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


class StateAtStart(L.Callback):
    """The network's weights and the optimizer's state when training starts (after a resume has restored them)."""

    def on_train_start(self, trainer: L.Trainer, pl_module: StyleTransferModule) -> None:
        self.net = {f"net.{k}": v.clone() for k, v in pl_module.net.state_dict().items()}
        self.optimizer = copy.deepcopy(trainer.optimizers[0].state_dict())


def test_resume_restores_weights_and_adam_and_continues_the_step_count(config, tmp_path: Path) -> None:
    cfg = config(
        "trainer.max_steps=3",
        "callbacks.checkpoint_last.every_n_train_steps=100",
        "callbacks.sample_images=null",
        "callbacks.export_weights=null",
    )
    fit(cfg, limit_val_batches=0)
    last = tmp_path / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == 3
    cfg.trainer.max_steps = 5
    start = StateAtStart()
    trainer, _, _, recorder = fit(cfg, ckpt_path=str(last), limit_val_batches=0, callbacks=[start])
    torch.testing.assert_close(start.net, saved["state_dict"], rtol=0, atol=0)
    torch.testing.assert_close(start.optimizer, saved["optimizer_states"][0], rtol=0, atol=0)
    assert [float(s["step"]) for s in start.optimizer["state"].values()] == [3.0] * len(start.optimizer["state"])
    assert [m["step"] for m in recorder.metrics] == [4, 5]  # two new steps, numbered on from 3
    assert trainer.global_step == 5
    assert torch.load(last, weights_only=True)["global_step"] == 5


def test_the_recommended_gpu_settings_train_two_steps_on_the_cpu(
    train_images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trainer=gpu (bf16-mixed) + model.channels_last=true + model.compile=true, as train.py builds them.

    Kept minuscule: a CPU without native bf16 emulates it (~200x slower than float32), and a cold Inductor
    compile (C++ code generation) took ~3 min here, so torch.compile runs with its aot_eager backend: the same
    Dynamo capture and AOTAutograd graphs as on a GPU, without generated code."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    monkeypatch.setattr(nst.app.device, "cpu_has_native_bf16", lambda: True)  # as on a CPU with AVX512-BF16
    cfg = compose_config(
        "train",
        [*TEST_OVERRIDES["train"], "trainer=gpu", "trainer.accelerator=cpu", "model.channels_last=true",
         "model.compile=true", "model.net.base_channels=4", "noise.pixels=20", "trainer.max_steps=2",
         f"data.root={train_images}", f"paths.output_dir={tmp_path}", "callbacks.sample_images=null"],
    )
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.benchmark
    precision = check_trainer_precision(cfg.trainer.accelerator, cfg.trainer.precision)
    trainer, module, datamodule, recorder = fit(cfg, precision=precision, limit_val_batches=0)
    assert trainer.precision == "bf16-mixed" and trainer.global_step == 2
    assert module.net._compiled_call_impl is not None and module.channels_last is True
    convs = [p for p in module.net.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert all(math.isfinite(m["loss/total"]) and m["loss/noise"] > 0 for m in recorder.metrics)
    with torch.no_grad():
        x = datamodule.val_images()
        torch.testing.assert_close(load_exported(tmp_path / "train_style.pt")(x), module.net.eval()(x).float())


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
