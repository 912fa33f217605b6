"""The weights file (nst.fastnet.weights): round trip, float32 CPU export, prefixes, bad files, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nst.errors import NSTError
from nst.fastnet.transformer_net import TransformerNet
from nst.fastnet.weights import export_checkpoint, export_weights, load_exported


def test_export_load_round_trip(tmp_path: Path) -> None:
    net = TransformerNet("nearest", base_channels=8, num_residual=2)
    path = export_weights(net, tmp_path / "sub" / "style.pt")
    assert path == tmp_path / "sub" / "style.pt" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["style.pt"]  # no temp file left behind
    loaded = load_exported(path)
    assert not loaded.training
    assert loaded.model_args == net.model_args
    x = torch.rand(1, 3, 21, 30)
    net.eval()
    assert torch.equal(loaded(x), net(x))


def test_export_is_float32_cpu_without_compile_prefix(tmp_path: Path) -> None:
    net = TransformerNet(base_channels=4, num_residual=1).to(torch.bfloat16)
    path = export_weights(torch.compile(net), tmp_path / "w.pt")  # lazy: nothing is compiled here
    data = torch.load(path, weights_only=True)
    assert set(data) == {"model_args", "state_dict"}
    assert set(data["state_dict"]) == set(TransformerNet(base_channels=4, num_residual=1).state_dict())
    assert all(v.dtype == torch.float32 and v.device.type == "cpu" for v in data["state_dict"].values())


@pytest.mark.parametrize("prefix", ["_orig_mod.", "net.", "net._orig_mod."])
def test_prefixed_keys_load(tmp_path: Path, prefix: str) -> None:
    net = TransformerNet(base_channels=4, num_residual=1).eval()
    sd = {prefix + k: v for k, v in net.state_dict().items()}
    torch.save({"model_args": net.model_args, "state_dict": sd}, tmp_path / "w.pt")
    x = torch.rand(1, 3, 16, 12)
    assert torch.equal(load_exported(tmp_path / "w.pt")(x), net(x))


def _write_bad(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pt"
    net = TransformerNet(base_channels=4, num_residual=1)
    sd = net.state_dict()
    if kind == "garbage":
        path.write_bytes(b"\x00not a torch file at all\xff" * 10)
    elif kind == "lightning":
        torch.save({"state_dict": {"net." + k: v for k, v in sd.items()}, "pytorch-lightning_version": "2.6"}, path)
    elif kind == "plain_tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "missing_key":
        sd.pop(next(iter(sd)))
        torch.save({"model_args": net.model_args, "state_dict": sd}, path)
    elif kind == "extra_key":
        torch.save({"model_args": net.model_args, "state_dict": {**sd, "head.2.weight": torch.zeros(1)}}, path)
    elif kind == "wrong_shape":
        torch.save({"model_args": {**net.model_args, "base_channels": 8}, "state_dict": sd}, path)
    elif kind == "bad_args":
        torch.save({"model_args": {"upsample": "pixelshuffle"}, "state_dict": sd}, path)
    return path


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("missing", "not found"),
        ("garbage", "cannot read"),
        ("lightning", "Lightning checkpoint without model_args"),
        ("plain_tensor", "not an nst weights file"),
        ("missing_key", "do not match"),
        ("extra_key", "do not match"),
        ("wrong_shape", "wrong shape"),
        ("bad_args", "bad model_args"),
    ],
)
def test_bad_weight_files_raise_one_clear_line(tmp_path: Path, kind: str, words: str) -> None:
    path = _write_bad(tmp_path, kind)
    with pytest.raises(NSTError) as info:
        load_exported(path)
    message = str(info.value)
    assert words in message
    assert str(path) in message
    assert "\n" not in message


def test_a_lightning_checkpoint_with_model_args_loads_and_exports(tmp_path: Path) -> None:
    """What train.py's checkpoints hold: ``net.*`` weights (compiled or not), ``model_args``, optimizer state."""
    net = TransformerNet(base_channels=4, num_residual=1)
    sd = {f"net.{k}": v for k, v in net.state_dict().items()}
    ckpt = {
        "pytorch-lightning_version": "2.6.0",
        "model_args": net.model_args,
        "state_dict": sd,
        "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": []}],
        "global_step": 7,
    }
    torch.save(ckpt, tmp_path / "best.ckpt")
    x = torch.rand(1, 3, 16, 12)
    assert torch.equal(load_exported(tmp_path / "best.ckpt")(x), net.eval()(x))
    assert export_checkpoint(tmp_path / "best.ckpt", tmp_path / "best.pt") == tmp_path / "best.pt"
    data = torch.load(tmp_path / "best.pt", weights_only=True)
    assert set(data) == {"model_args", "state_dict"} and data["state_dict"].keys() == net.state_dict().keys()


def test_failed_export_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = TransformerNet(base_channels=4, num_residual=1)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(NSTError, match="cannot write weights file"):
        export_weights(net, blocker / "w.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]

    def broken_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        Path(f).write_bytes(b"half a file")  # type: ignore[arg-type]
        raise OSError("disk full")

    out = tmp_path / "out"
    out.mkdir()
    old = out / "kept.pt"
    export_weights(net, old)
    before = old.read_bytes()
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(NSTError, match="disk full"):
        export_weights(net, out / "new.pt")
    with pytest.raises(NSTError):
        export_weights(net, old)
    assert sorted(p.name for p in out.iterdir()) == ["kept.pt"]  # no target, no temp file
    assert old.read_bytes() == before  # an existing file survives a failed overwrite


