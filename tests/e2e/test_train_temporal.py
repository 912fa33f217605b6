"""train.py with the temporal term, as subprocesses: a Hydra multirun over the stability weights, as a plain command."""

from __future__ import annotations

import math
from pathlib import Path

from tests.e2e.test_train import read_csv, run_train
from tests.helpers import compose_config, make_images


def test_sweep_over_temporal_weight_and_noise_pixels(tmp_path: Path) -> None:
    images = make_images(tmp_path / "images", size=(80, 72), suffix=".jpg")
    sweep = tmp_path / "sweep"
    proc = run_train(
        tmp_path,
        "temporal=synthetic",
        f"data.root={images}",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "logger=csv",
        "callbacks.sample_images=null",
        "callbacks.checkpoint_best=null",
        "loss.temporal_weight=0,500",
        "noise.pixels=0,50",
        f"hydra.sweep.dir={sweep}",
        flags=("-m",),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = {}
    for job in range(4):
        overrides = (sweep / str(job) / ".hydra" / "overrides.yaml").read_text()
        rows = read_csv(sweep / str(job) / "csv" / "metrics.csv")
        columns = set().union(*(r.keys() for r in rows))
        weight_on, noise_on = "loss.temporal_weight=500" in overrides, "noise.pixels=50" in overrides
        jobs[(weight_on, noise_on)] = job
        assert ("loss/temporal" in columns) == weight_on and ("loss/noise" in columns) == noise_on
        (probe,) = [r for r in rows if r.get("val/warp_error")]
        assert math.isfinite(float(probe["val/warp_error"])) and float(probe["val/warp_error_input"]) > 0
    assert len(jobs) == 4  # every combination ran


def test_experiment_udnie_consistent_composes() -> None:
    cfg = compose_config("train", ["experiment=train_udnie_consistent"])
    assert cfg.temporal._target_.endswith("SyntheticMotion") and cfg.loss.temporal_weight > 0
    assert cfg.noise.pixels == 1000 and cfg.task_name == "udnie_consistent"
