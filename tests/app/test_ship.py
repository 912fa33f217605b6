"""Shipping a trained network: fp16 weights with the metadata that says how they were made."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nst.app.ship import main, ship
from nst.fastnet.transformer_net import TransformerNet
from nst.fastnet.weights import export_weights, load_exported, read_meta


def test_a_shipped_file_is_half_the_size_loads_in_float32_and_paints_the_same(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = TransformerNet(base_channels=8, num_residual=1, upsample="nearest", styles=["udnie", "great_wave"]).eval()
    full = export_weights(net, tmp_path / "full.pt")
    shipped = ship(full, tmp_path / "weights" / "two.pt", command="python train.py experiment=x")
    assert shipped.stat().st_size < 0.6 * full.stat().st_size
    assert read_meta(shipped) == {"styles": ["udnie", "great_wave"], "command": "python train.py experiment=x"}
    loaded = load_exported(shipped)
    assert next(loaded.parameters()).dtype == torch.float32 and loaded.styles == ["udnie", "great_wave"]
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert (loaded(x, "great_wave") - net(x, "great_wave")).abs().max() < 5e-3  # fp16 rounding only


def test_shipping_a_checkpoint_records_its_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    net = TransformerNet(base_channels=8, num_residual=1)
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"pytorch-lightning_version": "2.6", "global_step": 1234, "state_dict": state,
                "model_args": net.model_args}, run / "checkpoints" / "last.ckpt")  # fmt: skip
    (run / "config.yaml").write_text(
        "vgg: {arch: vgg16, weights: hed}\ndata: {root: /data/photos, image_size: 192, batch_size: 4}\n"
        "trainer: {precision: bf16-mixed}\n"
    )
    assert main([str(run / "checkpoints" / "last.ckpt"), str(tmp_path / "one.pt")]) == 0
    assert "float16" in capsys.readouterr().out
    meta = read_meta(tmp_path / "one.pt")
    assert meta == {"styles": [], "steps": 1234, "encoder": "vgg16:hed", "data": "photos", "image_size": 192,
                    "batch_size": 4, "precision": "bf16-mixed"}  # fmt: skip
    assert main([str(run / "checkpoints" / "last.ckpt"), str(tmp_path / "two.pt"), "--command", "python train.py",
                 "--info", "hardware=2-core CPU", "--info", "wall_time=1 h 50 min"]) == 0
    assert read_meta(tmp_path / "two.pt") == meta | {"command": "python train.py", "hardware": "2-core CPU",
                                                     "wall_time": "1 h 50 min"}
    assert main([str(run / "checkpoints" / "last.ckpt"), str(tmp_path / "three.pt"), "--info", "hardware"]) == 1
    assert "is not KEY=TEXT" in capsys.readouterr().err and not (tmp_path / "three.pt").exists()
    assert main([str(tmp_path / "missing.ckpt"), str(tmp_path / "x.pt")]) == 1
    assert capsys.readouterr().err.startswith("error: weights file not found")
    assert not (tmp_path / "x.pt").exists()
