"""One network, many styles (Dumoulin et al. 2017): conditional instance norm, training, weights files, infer,
export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from nst.app.infer import infer
from nst.errors import NSTError
from nst.fastnet.transformer_net import CondInstanceNorm2d, TransformerNet
from nst.fastnet.weights import export_weights, load_exported
from tests.conftest import TEST_OVERRIDES
from tests.fastnet.training import fit  # one thread for tiny tensors: tests/fastnet/conftest.py
from tests.helpers import compose_config, copy_config

pytestmark = pytest.mark.filterwarnings(
    r"ignore:.*(does not have many workers|module\(s\) in eval mode|random weights|LeafSpec|is not empty).*"
)
ROOT = Path(__file__).resolve().parents[2]
STYLES = ["udnie", "great_wave", "starry_night"]


def _net(**kwargs: object) -> TransformerNet:
    torch.manual_seed(0)
    net = TransformerNet(base_channels=8, num_residual=1, upsample="nearest", styles=STYLES, **kwargs)
    with torch.no_grad():  # distinct per-style parameters, as training would leave them
        for module in net.modules():
            if isinstance(module, CondInstanceNorm2d):
                module.weight.normal_(1.0, 0.5)
                module.bias.normal_(0.0, 0.5)
    return net.eval()


def test_every_norm_is_conditional_and_the_convolutions_are_shared() -> None:
    net, plain = _net(), TransformerNet(base_channels=8, num_residual=1, upsample="nearest")
    assert not any(isinstance(m, nn.InstanceNorm2d) and m.affine for m in net.modules())
    norms = [m for m in net.modules() if isinstance(m, CondInstanceNorm2d)]
    assert len(norms) == 3 + 2 * 1 + 2 and all(m.weight.shape[0] == 3 for m in norms)
    # same parameter names as the plain network: only the norms' shapes grow a style axis
    assert net.state_dict().keys() == plain.state_dict().keys()
    assert net.model_args["styles"] == STYLES and "styles" not in plain.model_args


def test_styles_by_name_index_and_blend() -> None:
    net, x = _net(), torch.rand(2, 3, 24, 20)
    with torch.no_grad():
        by_name, by_index = net(x, "great_wave"), net(x, 1)
        torch.testing.assert_close(by_name, by_index)
        assert (net(x, "udnie") - by_name).abs().mean() > 1e-3  # the styles really differ
        per_image = net(x, torch.tensor([0, 1]))
        torch.testing.assert_close(per_image[1:], by_name[1:])
        torch.testing.assert_close(per_image[:1], net(x[:1], "udnie"))
        # a blend interpolates the norm parameters: 50/50 differs from both ends
        half = net(x, {"udnie": 1.0, "great_wave": 1.0})
        assert (half - by_name).abs().mean() > 1e-4 and (half - net(x, "udnie")).abs().mean() > 1e-4
    with pytest.raises(NSTError, match="unknown style 'monet'.*udnie, great_wave, starry_night"):
        net(x, "monet")
    with pytest.raises(NSTError, match="non-negative"):
        net(x, torch.tensor([1.0, -1.0, 0.0]))


@pytest.mark.parametrize("style", ["starry_night", {"udnie": 0.25, "starry_night": 0.75}])
def test_single_style_bakes_a_choice_into_a_plain_network(style: object) -> None:
    net, x = _net(), torch.rand(1, 3, 21, 26)
    plain = net.single_style(style)
    assert not any(isinstance(m, CondInstanceNorm2d) for m in plain.modules())
    with torch.no_grad():
        torch.testing.assert_close(plain(x), net(x, style), atol=1e-5, rtol=1e-4)
    assert plain.model_args.get("styles") == (["starry_night"] if isinstance(style, str) else None)


def test_multi_style_weights_file_round_trip(tmp_path: Path) -> None:
    net, x = _net(), torch.rand(1, 3, 16, 16)
    loaded = load_exported(export_weights(net, tmp_path / "three.pt"))
    assert loaded.styles == STYLES
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x, "great_wave"), net(x, "great_wave"))


def test_style_list_trains_one_network_validated_in_every_style(train_images: Path, tmp_path: Path) -> None:
    cfg = compose_config(
        "train",
        [*TEST_OVERRIDES["train"], f"data.root={train_images}", f"style=[{','.join(STYLES)}]", "data.image_size=48"],
    )
    cfg = copy_config(cfg, tmp_path, "trainer.max_steps=6", "trainer.val_check_interval=6", "noise.pixels=0")
    trainer, module, _, recorder = fit(cfg, config_callbacks=False)
    assert module.net.styles == STYLES and len(module.style_images) == 3
    # each style has its own Gram targets, and the batches were conditioned on more than one style
    grams = [g["relu1_2"] for g in module._style_grams]
    assert all((a - b).abs().max() > 0 for a, b in zip(grams, grams[1:]))
    drawn = set()
    for step in range(6):  # the draws are seeded by the step: replay them
        module._draw_style(step)
        drawn.add(module._style)
    assert len(drawn) > 1
    metrics = trainer.callback_metrics
    for name in STYLES:
        assert torch.isfinite(metrics[f"val/{name}/loss/style"])
    mean = sum(float(metrics[f"val/{name}/loss/total"]) for name in STYLES) / 3
    assert float(metrics["val/loss/total"]) == pytest.approx(mean, rel=1e-5)
    # exactly the drawn styles' norm parameters moved from their common start; the convolutions are shared
    norm = next(m for m in module.net.modules() if isinstance(m, CondInstanceNorm2d))
    moved = {i for i in range(3) if (norm.weight[i] - 1).abs().sum() > 0}
    assert len(recorder.metrics) == 6 and moved == drawn


def test_infer_picks_a_style_of_a_multi_style_file(tmp_path: Path) -> None:
    net = _net()
    weights = export_weights(net, tmp_path / "three.pt")
    photo = ROOT / "assets" / "content" / "chelsea.jpg"

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(ROOT / "infer.py"), f"weights={weights}", f"input={photo}", "max_size=48",
                   "precision=fp32", f"hydra.run.dir={tmp_path / 'run'}", *args]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)

    outputs = {}
    for name, arg in [("wave", "style=great_wave"), ("night", "style=starry_night"),
                      ("blend", "style.blend={great_wave:0.5,starry_night:0.5}")]:  # fmt: skip
        proc = run(arg, f"output={tmp_path / name}.png")
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs[name] = torch.from_numpy(__import__("numpy").asarray(__import__("PIL.Image").Image.open(
            tmp_path / f"{name}.png"))).float()  # fmt: skip
    assert (outputs["wave"] - outputs["night"]).abs().mean() > 1
    assert (outputs["blend"] - outputs["wave"]).abs().mean() > 0.5
    proc = run("style=raft_of_the_medusa", f"output={tmp_path / 'x.png'}")
    assert proc.returncode != 0 and "error: unknown style 'raft_of_the_medusa'" in proc.stderr
    assert not (tmp_path / "x.png").exists()


def _export(make_config, tmp_path: Path, *overrides: str, blend: dict[str, float] | None = None) -> Path:
    """Export ``_net()`` with infer.py's config (in process) to TorchScript; returns the file."""
    weights = export_weights(_net(), tmp_path / "three.pt")
    cfg = make_config("infer", f"weights={weights}", "export=torchscript", f"output={tmp_path / 'net.pt'}", *overrides)
    if blend is not None:
        cfg.style.blend = blend
    infer(cfg)
    return tmp_path / "net.pt"


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.load's deprecation notice
def test_export_keeps_every_style_as_an_input(make_config, tmp_path: Path, capsys) -> None:
    path = _export(make_config, tmp_path)  # style=udnie is the config's default: it must not be folded in
    assert "inputs image (B,3,H,W) and style (B,3) over [udnie, great_wave, starry_night]" in capsys.readouterr().out
    files = {"styles.json": ""}
    loaded, net, x = torch.jit.load(str(path), _extra_files=files), _net(), torch.rand(3, 3, 27, 19)
    assert json.loads(files["styles.json"]) == STYLES
    with torch.no_grad():
        for style in (torch.eye(3), torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 3.0], [1.0, 1.0, 1.0]])):
            torch.testing.assert_close(loaded(x, style), net(x, style), atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_export_styles_one_folds_the_style_choice_in(make_config, tmp_path: Path, capsys) -> None:
    blend = {"great_wave": 0.25, "starry_night": 0.75}
    path = _export(make_config, tmp_path, "export_styles=one", blend=blend)
    assert "input image (B,3,H,W)," in capsys.readouterr().out
    loaded, x = torch.jit.load(str(path)), torch.rand(2, 3, 27, 19)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), _net().single_style(blend)(x), atol=1e-5, rtol=0)
        assert (loaded(x) - _net()(x, "starry_night")).abs().mean() > 1e-4  # the blend, not one of its ends
    with pytest.raises(RuntimeError):  # one input only
        loaded(x, torch.eye(3)[:2])


def test_a_bad_export_styles_is_one_error(make_config, tmp_path: Path) -> None:
    with pytest.raises(NSTError, match=r"export_styles=every is not one of all, one; use export_styles=all"):
        _export(make_config, tmp_path, "export_styles=every")
    assert not (tmp_path / "net.pt").exists()
