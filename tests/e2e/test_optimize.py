"""optimize.py end to end: one shared single run (odd input modes, blended styles, CSV + offline W&B), a
2-job multirun (L-BFGS and Adam), and in-process runs for inputs that must fail with one ``error:`` line.

Subprocesses run with one thread: at 64 px it is as fast as two, and it keeps the runs quick when the
suite shares the machine with other work.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.helpers import item_key, load_entry, make_image, wandb_records

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["loss/content", "loss/style", "loss/tv", "loss/total"]
SMALL = ["vgg.weights=random", "loss.style_weight=1e9", "max_size=64"]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "WANDB_API_KEY")}
    env.update(WANDB_MODE="offline", WANDB_DIR=str(tmp / "wandb_dir"), WANDB_SILENT="true", OMP_NUM_THREADS="1")
    return env


def _optimize(args: list[str], tmp: Path, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "optimize.py"), *flags, *SMALL, *args]
    return subprocess.run(cmd, cwd=tmp, env=_env(tmp), capture_output=True, text=True, timeout=300)


def _inputs(folder: Path) -> dict[str, Path]:
    """A 16-bit grayscale content, an RGBA style with transparency and a palette style."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:54, 0:72]
    gray16 = ((np.sin(x / 5) + np.cos(y / 7) + 2) / 4 * 65535).astype(np.uint16)
    Image.fromarray(gray16).save(folder / "content16.png")
    rgba = Image.new("RGBA", (60, 60), (200, 30, 30, 255))
    rgba.paste((20, 20, 200, 0), (0, 0, 30, 60))
    rgba.save(folder / "style_rgba.png")
    pal = Image.new("P", (50, 40), 0)
    pal.putpalette([250, 200, 0, 0, 80, 160] + [0] * 762)
    pal.paste(1, (0, 0, 25, 20))
    pal.save(folder / "style_palette.png")
    return {"content": folder / "content16.png", "rgba": folder / "style_rgba.png",
            "palette": folder / "style_palette.png"}


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("single")
    files = _inputs(tmp / "in")
    proc = _optimize(
        [
            f"content={files['content']}",
            f"style.image=[{files['rgba']},{files['palette']}]",
            "style.blend=[2,1]",
            "iterations=12",
            "early_stop.enabled=false",
            "logger=[csv,wandb]",
            f"output={tmp / 'out' / 'result.png'}",
            f"hydra.run.dir={tmp / 'run'}",
        ],
        tmp,
    )
    return {"proc": proc, "tmp": tmp, "run": tmp / "run", "output": tmp / "out" / "result.png"}


def test_single_run_writes_the_image_and_prints_one_summary_line(single) -> None:
    proc = single["proc"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-2].startswith("done: 12 iterations, stopped: iteration budget used up, ")
    assert "loss/content=" in lines[-2] and "loss/style=" in lines[-2] and "loss/total=" in lines[-2]
    assert lines[-1] == f"output: {single['output']}"
    with Image.open(single["output"]) as img:  # 72x54 gray 16-bit -> 64x48 RGB
        assert img.format == "PNG" and img.mode == "RGB" and img.size == (64, 48)
    assert [p.name for p in single["output"].parent.iterdir()] == ["result.png"]  # no temp file left


def _curves(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_run_dir_holds_the_curves_their_plot_and_the_resolved_config(single) -> None:
    rows = _curves(single["run"] / "loss_curves.csv")
    assert list(rows[0]) == ["iteration", *NAMES] and len(rows) == 12
    assert [int(r["iteration"]) for r in rows] == list(range(12))
    assert float(rows[0]["loss/content"]) == 0.0  # init=content
    assert float(rows[-1]["loss/style"]) < float(rows[0]["loss/style"])
    with Image.open(single["run"] / "loss_curves.png") as img:
        assert img.format == "PNG" and img.width >= 600
    config = yaml.safe_load((single["run"] / "config.yaml").read_text())
    assert "${" not in (single["run"] / "config.yaml").read_text()  # resolved
    assert config["style"]["image"][1].endswith("style_palette.png") and config["style"]["blend"] == [2, 1]
    assert config["output"] == str(single["output"]) and config["vgg"]["weights"] == "random"


def test_wandb_offline_run_got_the_same_curves_images_config_and_summary(single) -> None:
    runs = list((single["tmp"] / "wandb_dir" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    history, summary, config, exit_codes = [], {}, {}, []
    for record in wandb_records(runs[0]):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({item_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            summary.update({item_key(item): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "run":
            config = {item.key: json.loads(item.value_json) for item in record.run.config.update}
        elif kind == "exit":
            exit_codes.append(record.exit.exit_code)
    rows = _curves(single["run"] / "loss_curves.csv")
    assert [h["_step"] for h in history] == list(range(12))
    assert [h["loss/total"] for h in history] == pytest.approx([float(r["loss/total"]) for r in rows])
    assert history[-1]["stylized/_type"] == "image-file" and history[-1]["loss_curves/_type"] == "image-file"
    assert (history[-1]["stylized/width"], history[-1]["stylized/height"]) == (64, 48)
    assert summary["iterations"] == 12 and summary["stop_reason"] == "iterations"
    assert config["loss"]["style_weight"] == 1e9 and config["iterations"] == 12
    assert exit_codes == [0]


def test_multirun_runs_both_jobs_with_lbfgs_and_adam(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["optimizer=lbfgs,adam", "iterations=4", "max_size=48", f"hydra.sweep.dir={sweep}"]
    proc = _optimize(args, tmp_path, flags=("-m",))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("done: 4 iterations") == 2
    for job, optimizer in (("0", "torch.optim.LBFGS"), ("1", "torch.optim.Adam")):
        with Image.open(sweep / job / "stylized.png") as img:
            assert img.size == (48, 32)  # chelsea 451x300
        assert len(_curves(sweep / job / "loss_curves.csv")) == 4
        assert yaml.safe_load((sweep / job / "config.yaml").read_text())["optimizer"]["_target_"] == optimizer


# --- inputs that must fail: in-process (no interpreter start-up), each one clean `error:` line ---
@pytest.fixture(scope="module")
def optimize_module():
    return load_entry("optimize")


@pytest.fixture(scope="module")
def entry(optimize_module):
    return optimize_module.main


def _fails(entry, monkeypatch, capsys, tmp_path: Path, args: list[str]) -> str:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    output = tmp_path / "out" / "result.png"
    argv = ["optimize.py", *SMALL, f"output={output}", f"hydra.run.dir={tmp_path / 'run'}", *args]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        entry()
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0])
    assert not output.parent.exists() or not list(output.parent.iterdir())  # nothing, not even a temp file
    assert not (tmp_path / "run" / "loss_curves.csv").exists()
    return errors[0]


def test_missing_content_file(entry, monkeypatch, capsys, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jpg"
    line = _fails(entry, monkeypatch, capsys, tmp_path, [f"content={missing}"])
    assert line == f"error: content: image not found: {missing} (run folder: {tmp_path / 'run'})"


def test_corrupt_style_file(entry, monkeypatch, capsys, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    line = _fails(entry, monkeypatch, capsys, tmp_path, [f"style.image={corrupt}"])
    assert line.startswith(f"error: style: cannot read image {corrupt}")


def test_one_pixel_content_is_refused(entry, monkeypatch, capsys, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1), (255, 0, 0)).save(tiny)
    line = _fails(entry, monkeypatch, capsys, tmp_path, [f"content={tiny}"])
    assert f"content: image {tiny} is 1x1" in line and "32 px" in line


def test_output_without_image_suffix_is_refused_before_running(entry, monkeypatch, capsys, tmp_path: Path) -> None:
    line = _fails(entry, monkeypatch, capsys, tmp_path, [f"output={tmp_path / 'result.txt'}"])
    assert "has no image suffix" in line and "result.txt" in line


def test_divergence_writes_no_image_says_what_to_change_and_closes_the_wandb_run(
    entry, monkeypatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    args = ["optimizer.lr=1e6", "iterations=20", "max_size=48", "logger=[csv,wandb]"]
    line = _fails(entry, monkeypatch, capsys, tmp_path, args)
    assert "NaN/inf" in line and "loss.style_weight" in line and "optimizer=adam" in line
    import wandb

    wandb.teardown()  # in-process: offline finish() returns before wandb-core flushes; process exit does this
    (run,) = (tmp_path / "wandb_dir" / "wandb").glob("offline-run-*/run-*.wandb")
    records = list(wandb_records(run))
    assert [r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit"] == [1]
    steps = [r for r in records if r.WhichOneof("record_type") == "history"]
    assert 1 <= len(steps) < 20  # the finite iterations before it diverged


def test_errors_inside_hydra_instantiate_stay_one_clean_line(entry, monkeypatch, capsys, tmp_path: Path) -> None:
    missing = tmp_path / "vgg19.pth"
    line = _fails(entry, monkeypatch, capsys, tmp_path, [f"vgg.weights={missing}"])
    assert line == f"error: vgg.weights: no such file {missing}; use imagenet, random, hed or the path of a " \
                   f"VGG-19 .pth (run folder: {tmp_path / 'run'})"


def test_optimizer_settings_torch_refuses(entry, monkeypatch, capsys, tmp_path: Path) -> None:
    line = _fails(entry, monkeypatch, capsys, tmp_path, ["optimizer=adam", "optimizer.lr=-1", "max_size=48"])
    assert "optimizer refused its settings" in line and "learning rate" in line


def test_bf16_on_a_cpu_without_native_bf16_is_refused(entry, monkeypatch, capsys, tmp_path: Path) -> None:
    import nst.app.device

    monkeypatch.setattr(nst.app.device, "cpu_has_native_bf16", lambda: False)  # as on AVX2-only CPUs
    line = _fails(entry, monkeypatch, capsys, tmp_path, ["precision=bf16", "device=cpu"])
    assert line.startswith("error: precision=bf16 on a CPU without native bf16") and "precision=fp32" in line


def test_too_many_pyramid_levels_for_the_content(entry, monkeypatch, capsys, tmp_path: Path) -> None:
    line = _fails(entry, monkeypatch, capsys, tmp_path, ["pyramid.levels=3", "pyramid.iterations=[1,1,1]"])
    assert "pyramid.levels=3 makes the coarsest level 16x11 for a 64x43 image" in line and "fewer levels" in line


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(entry, monkeypatch, capsys, tmp_path: Path) -> None:
    photo = make_image(tmp_path / "photo.png")
    style = make_image(tmp_path / "style.png", seed=1)
    before = photo.read_bytes(), style.read_bytes()
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    for output, refused in ((photo, photo), (tmp_path / "." / "style.png", style)):
        argv = ["optimize.py", *SMALL, f"content={photo}", f"style.image={style}", f"output={output}",
                f"hydra.run.dir={tmp_path / 'run'}"]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit):
            entry()
        err = capsys.readouterr().err
        assert err.strip() == f"error: output {output} is the input {refused}: writing it would destroy the input; " \
                              f"choose another output (run folder: {tmp_path / 'run'})"
    assert (photo.read_bytes(), style.read_bytes()) == before


# --- in-process runs that succeed ---
def _run(entry, monkeypatch, tmp_path: Path, args: list[str]) -> Path:
    run = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["optimize.py", *SMALL, "logger=csv", f"hydra.run.dir={run}", *args])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    entry()
    return run


def test_max_size_is_a_limit_and_the_style_gets_its_own_size(optimize_module, monkeypatch, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (80, 60), (90, 140, 60)).save(photo)
    sizes = []
    import nst.app.optimize as body  # the body of optimize.py

    real = body.load_style_images
    spy = lambda paths, size: sizes.append(size) or real(paths, size)  # noqa: E731
    monkeypatch.setattr(body, "load_style_images", spy)
    for extra in ([], ["style.size=48"]):
        args = [f"content={photo}", "max_size=128", "iterations=2", *extra]
        run = _run(optimize_module.main, monkeypatch, tmp_path, args)
        with Image.open(run / "stylized.png") as img:
            assert img.size == (80, 60)  # never scaled up to max_size
    assert sizes == [80, 48]  # default: the content's long side after max_size; else style.size


def test_pyramid_with_progress_images(entry, monkeypatch, tmp_path: Path) -> None:
    args = ["max_size=96", "pyramid.levels=2", "pyramid.iterations=[3,2]", "save_every=2", "early_stop.enabled=false"]
    run = _run(entry, monkeypatch, tmp_path, args)
    with Image.open(run / "stylized.png") as img:
        assert img.size == (96, 64)
    progress = sorted((run / "progress").iterdir())
    assert [p.name for p in progress] == ["iter_0000002.png", "iter_0000004.png"]
    sizes = []
    for path in progress:
        with Image.open(path) as img:
            sizes.append(img.size)
    assert sizes == [(48, 32), (96, 64)]  # the coarse level, then full size
    assert [int(r["iteration"]) for r in _curves(run / "loss_curves.csv")] == list(range(5))
