"""train.py end to end, as subprocesses: one shared run, a resumed run, a multirun, DDP on two CPU processes
(and refused inside a multirun), bad data."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from nst.app.device import cpu_has_native_bf16
from nst.fastnet.weights import load_exported
from tests.helpers import make_images, wandb_history

ROOT = Path(__file__).resolve().parents[2]
TERMS = ("content", "style", "tv", "noise", "total")
TINY = [
    "data=folder",
    "vgg.weights=random",
    "data.image_size=64",
    "data.batch_size=2",
    "data.num_workers=0",
    "data.num_val=2",
    "model.net.base_channels=8",
    "model.net.num_residual=1",
    "trainer.accelerator=cpu",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.consistency.size=48",
    "callbacks.consistency.max_frames=3",
]


def run_train(
    tmp: Path, *overrides: str, flags: tuple[str, ...] = (), timeout: int = 240
) -> subprocess.CompletedProcess:
    env = os.environ | {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp / "wandb_dir"),
        "WANDB_SILENT": "true",
        "OMP_NUM_THREADS": "1",  # tiny tensors: threads only add overhead (and stall on a shared machine)
        "HYDRA_FULL_ERROR": "0",
    }
    env.pop("WANDB_API_KEY", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *flags, *TINY, *overrides],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- one shared run -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("train")
    images = make_images(tmp / "images", size=(80, 72), suffix=".jpg")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    run_dir = tmp / "run"
    proc = run_train(
        tmp,
        f"data.root={images}",
        "trainer.max_steps=5",
        "trainer.val_check_interval=5",
        "callbacks.sample_images.every_n_steps=5",
        "callbacks.checkpoint_last.every_n_train_steps=5",
        "logger=[csv,wandb]",
        "trainer.precision=bf16-mixed",  # falls back to 32-true on a CPU without native bf16
        f"hydra.run.dir={run_dir}",
    )
    return proc, run_dir


def test_run_succeeds_and_prints_the_exported_files(shared_run) -> None:
    proc, run_dir = shared_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert f"exported weights: {run_dir / 'train_style.pt'}" in proc.stdout
    assert f"exported best weights (val/loss/total): {run_dir / 'checkpoints' / 'best.pt'}" in proc.stdout
    assert load_exported(run_dir / "checkpoints" / "best.pt").model_args["base_channels"] == 8
    data = torch.load(run_dir / "train_style.pt", weights_only=True)
    assert set(data) == {"model_args", "state_dict"}
    assert data["model_args"] == {"upsample": "deconv", "base_channels": 8, "num_residual": 1}
    out = load_exported(run_dir / "train_style.pt")(torch.rand(1, 3, 45, 67))
    assert out.shape == (1, 3, 45, 67)


def test_bf16_on_a_cpu_without_native_bf16_trains_in_float32_with_a_warning(shared_run) -> None:
    proc, _ = shared_run
    warned = "trainer.precision=bf16-mixed on a CPU without native bf16" in proc.stderr
    assert warned == (not cpu_has_native_bf16())
    assert ("Using bfloat16 Automatic Mixed Precision" in proc.stderr + proc.stdout) == cpu_has_native_bf16()


def test_corrupt_image_is_skipped_and_counted(shared_run) -> None:
    proc, _ = shared_run
    assert "skipped 1 of 9 images" in proc.stderr and "broken.jpg" in proc.stderr


def test_checkpoints_last_and_best_without_vgg(shared_run) -> None:
    _, run_dir = shared_run
    for name in ("last.ckpt", "best.ckpt"):
        ckpt = torch.load(run_dir / "checkpoints" / name, weights_only=True)
        assert ckpt["global_step"] == 5
        assert not [k for k in ckpt["state_dict"] if k.startswith("criterion.")]


def test_run_folder_holds_config_commit_style_and_samples(shared_run) -> None:
    _, run_dir = shared_run
    config = (run_dir / "config.yaml").read_text()
    assert "${" not in config and f"root: {run_dir.parent / 'images'}" in config
    commit = (run_dir / "git_commit.txt").read_text().strip()
    assert commit == "unknown" or len(commit.removesuffix("-dirty")) == 40
    assert (run_dir / "style" / "udnie.jpg").read_bytes() == (ROOT / "assets" / "styles" / "udnie.jpg").read_bytes()
    with Image.open(run_dir / "samples" / "step_0000005.png") as grid:
        assert grid.size == (4 * 66 + 2, 4 * 66 + 2)  # the 4th row: the consistency probe's


def test_csv_holds_every_loss_curve(shared_run) -> None:
    _, run_dir = shared_run
    rows = read_csv(run_dir / "csv" / "metrics.csv")
    train_rows = [r for r in rows if r.get("loss/total")]
    assert [int(r["step"]) for r in train_rows] == [0, 1, 2, 3, 4]
    for row in train_rows:
        assert all(math.isfinite(float(row[f"loss/{t}"])) for t in TERMS)
    assert any(r.get("val/loss/total") for r in rows)
    (probe,) = [r for r in rows if r.get("val/warp_error")]  # the consistency probe, once per validation
    assert math.isfinite(float(probe["val/warp_error"])) and math.isfinite(float(probe["val/style_distance"]))


def test_wandb_offline_run_holds_every_loss_curve_and_the_samples(shared_run) -> None:
    _, run_dir = shared_run
    assert not (run_dir / "wandb").exists()  # WANDB_DIR (set by run_train) decides where W&B writes
    (run_file,) = (run_dir.parent / "wandb_dir").glob("wandb/offline-run-*/run-*.wandb")
    rows = wandb_history(run_file)
    train_rows = [r for r in rows if "loss/total" in r]
    assert [r["trainer/global_step"] for r in train_rows] == [0, 1, 2, 3, 4]
    for row in train_rows:
        assert all(math.isfinite(row[f"loss/{t}"]) for t in TERMS)
    (samples,) = [r for r in rows if r.get("samples/_type") == "images/separated"]
    (media,) = samples["samples/filenames"]
    assert next(run_file.parent.glob("files")).joinpath(media).is_file()
    assert any("val/stability" in r for r in rows)
    assert any("val/warp_error" in r and "val/style_distance" in r for r in rows)


# --- other runs ---------------------------------------------------------------------------------


def test_multirun_runs_both_jobs(tmp_path: Path) -> None:
    images = make_images(tmp_path / "images", size=(80, 72), suffix=".jpg")
    sweep = tmp_path / "sweep"
    proc = run_train(
        tmp_path,
        f"data.root={images}",
        "trainer.max_steps=2",
        "logger=csv",
        "callbacks.sample_images=null",
        "noise.pixels=0,200",
        f"hydra.sweep.dir={sweep}",
        flags=("-m",),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for job, noise_on in (("0", False), ("1", True)):
        assert (sweep / job / "train_style.pt").is_file()
        columns = read_csv(sweep / job / "csv" / "metrics.csv")[0].keys()
        assert "loss/total" in columns and ("loss/noise" in columns) == noise_on


def test_resume_goes_on_in_the_same_run_folder_csv_and_wandb_run(tmp_path: Path) -> None:
    images = make_images(tmp_path / "images", size=(80, 72), suffix=".jpg")
    common = (f"data.root={images}", "trainer.val_check_interval=1", "callbacks.sample_images=null")
    first = run_train(tmp_path, *common, "trainer.max_steps=3", "logger=[csv,wandb]")
    assert first.returncode == 0, first.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "train").iterdir()
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    # no hydra.run.dir: the checkpoint's own folder
    second = run_train(tmp_path, *common, "trainer.max_steps=5", "logger=[csv,wandb]", f"ckpt_path={ckpt}")
    assert second.returncode == 0, second.stderr[-3000:]
    assert list((tmp_path / "outputs" / "train").iterdir()) == [run_dir]
    assert "is not empty" not in second.stderr  # no warnings about the CSV or the checkpoints folder
    rows = read_csv(run_dir / "csv" / "metrics.csv")
    assert [int(r["step"]) for r in rows if r.get("loss/total")] == [0, 1, 2, 3, 4]  # one curve, each step once
    val = {int(r["step"]): float(r["val/loss/total"]) for r in rows if r.get("val/loss/total")}
    assert len(val) == 5
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["global_step"] - 1 == min(val, key=val.get)  # best.ckpt kept the best of both parts
    run_id = (run_dir / "wandb_id.txt").read_text().strip()
    runs = sorted((tmp_path / "wandb_dir" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(f"-{run_id}") for r in runs)  # `wandb sync` joins them
    assert f"exported weights: {run_dir / 'train_style.pt'}" in second.stdout


def test_ddp_ranks_see_different_data_and_noise_and_end_with_the_same_weights(tmp_path: Path) -> None:
    images = make_images(tmp_path / "images", size=(80, 72), suffix=".jpg")
    run_dir = tmp_path / "run"
    proc = run_train(
        tmp_path,
        "trainer=ddp",
        f"data.root={images}",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "trainer.max_steps=2",
        "logger=csv",
        "callbacks.sample_images=null",
        "+callbacks.probe._target_=tests.e2e.probe.RecordNetInputs",
        f"+callbacks.probe.dirpath={tmp_path / 'probe'}",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout
    assert "Starting with 2 processes" in proc.stderr + proc.stdout
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    assert proc.stdout.count("exported weights:") == 1  # rank 0 only
    assert load_exported(run_dir / "train_style.pt").model_args["base_channels"] == 8
    ranks = [torch.load(tmp_path / "probe" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [len(r["inputs"]) for r in ranks] == [2, 2]
    for a, b in zip(ranks[0]["inputs"], ranks[1]["inputs"]):
        (clean_a, noisy_a), (clean_b, noisy_b) = a.chunk(2), b.chunk(2)
        assert not torch.equal(clean_a, clean_b)  # each rank its own shard of the images
        assert not torch.equal((noisy_a != clean_a).any(1), (noisy_b != clean_b).any(1))  # and its own noise
    torch.testing.assert_close(ranks[0]["net"], ranks[1]["net"], rtol=0, atol=0)  # DDP kept them in sync


def test_ddp_inside_a_multirun_is_refused_with_one_line(tmp_path: Path) -> None:
    images = make_images(tmp_path / "images", size=(80, 72), suffix=".jpg")
    proc = run_train(
        tmp_path,
        "trainer=ddp",
        f"data.root={images}",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "logger=csv",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        flags=("-m",),
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "re-launch the whole sweep" in errors[0] and "submitit_slurm" in errors[0] and "torchrun" in errors[0]
    assert errors[1:] == ["error: 1 job(s) of the multirun failed"]
    assert "Starting with 2 processes" not in proc.stderr + proc.stdout


def test_empty_folder_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_train(tmp_path, f"data.root={tmp_path / 'empty'}", "logger=csv", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no image files" in errors[0] and "data=folder data.root=PATH" in errors[0]
