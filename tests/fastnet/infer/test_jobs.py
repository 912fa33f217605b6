"""Jobs for files and folders (nst.fastnet.infer.jobs, behind infer.py): an exported network stylizes an image or a
folder at each image's own size, names kept; bad weights are one-line errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image

from nst.fastnet.infer.engines import TorchEngine
from nst.fastnet.infer.jobs import InferSettings, plan_jobs, run_jobs
from nst.fastnet.transformer_net import TransformerNet
from nst.fastnet.weights import export_weights, load_exported
from nst.io.image import load_image

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return export_weights(TransformerNet(base_channels=8, num_residual=1), tmp_path_factory.mktemp("w") / "style.pt")


def _images(folder: Path) -> None:
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (45, 31), (200, 30, 30)).save(folder / "a.png")
    Image.new("L", (20, 50), 90).save(folder / "sub" / "b.jpg")
    (folder / "notes.txt").write_text("not an image")


def test_stylize_files_keeps_sizes_and_names(tmp_path, weights) -> None:
    _images(tmp_path / "in")
    net = load_exported(weights)
    engine = TorchEngine(net, torch.device("cpu"), "fp32")
    jobs = plan_jobs(tmp_path / "in", tmp_path / "out")
    outputs = run_jobs(engine, jobs, InferSettings(batch_size=1)).outputs
    assert [p.relative_to(tmp_path / "out").as_posix() for p in outputs] == ["a.png", "sub/b.jpg"]
    assert load_image(outputs[0], min_side=None).shape == (1, 3, 31, 45)
    assert load_image(outputs[1], min_side=None).shape == (1, 3, 50, 20)
    with torch.inference_mode():
        expected = net(load_image(tmp_path / "in" / "a.png", min_side=None))
    got = load_image(outputs[0], min_side=None)
    assert (got - expected).abs().max() <= 1 / 255 + 1e-6, "the file holds the network's output"


def test_cli_one_image_and_clear_errors(tmp_path, weights, python) -> None:
    out = tmp_path / "cat.png"
    run = subprocess.run(
        [python, str(ROOT / "infer.py"), f"weights={weights}", f"input={ROOT / 'assets' / 'content' / 'chelsea.jpg'}",
         f"output={out}", "max_size=64",
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert load_image(out).shape == (1, 3, 43, 64)
    assert str(out) in run.stdout

    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, "pytorch-lightning_version": "2.6"}, ckpt)
    for args, message in [
        (["weights=null"], "needs weights=PATH"),
        ([f"weights={tmp_path / 'missing.pt'}"], "not found"),
        ([f"weights={ckpt}"], "Lightning checkpoint"),
        ([f"weights={weights}", f"input={tmp_path / 'nope.jpg'}"], "input not found"),
    ]:
        run = subprocess.run([python, str(ROOT / "infer.py"), *args, f"hydra.run.dir={tmp_path / 'bad'}"],
                             capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 1
        assert run.stderr.strip().startswith("error: ") and message in run.stderr
        assert "Traceback" not in run.stderr
