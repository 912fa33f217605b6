"""Every primary config and every option of every config group composes and resolves, so a typo fails CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict, read_write

from nst.app.config import CONF_DIR

PRIMARY = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
# Groups whose options are not selected as `group=option` from a primary config.
NOT_SELECTABLE = {"hydra", "experiment", "hparams_search"}


def _compose(config: str, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    # what Hydra sets at run time
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.runtime.output_dir = "/tmp/nst-test-run"
    resolved = {key: OmegaConf.select(cfg, key) for key in cfg if key != "hydra"}
    resolved = OmegaConf.to_container(OmegaConf.create(resolved), resolve=True)
    return cfg, resolved


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for config in PRIMARY:
        text = (CONF_DIR / f"{config}.yaml").read_text()
        defaults = OmegaConf.create(text).get("defaults", [])
        groups = [next(iter(d)) for d in defaults if isinstance(d, dict) or OmegaConf.is_dict(d)]
        for group in groups:
            if group in NOT_SELECTABLE:
                continue
            cases += [(config, group, option) for option in _options(group)]
    return cases


def test_primary_configs_exist() -> None:
    assert {"optimize", "train"} <= set(PRIMARY)


@pytest.mark.parametrize("config", PRIMARY)
def test_primary_config_composes(config: str) -> None:
    cfg, resolved = _compose(config, [])
    assert resolved["task_name"] == {"web": "web_server"}.get(config, config)  # conf/web.yaml: outputs/web_server/
    for path in Path(CONF_DIR).glob("style/*.yaml"):
        assert (CONF_DIR.parent / "assets" / "styles" / f"{path.stem}.jpg").is_file(), path.stem


@pytest.mark.parametrize("config,group,option", _cases(), ids=lambda v: str(v))
def test_every_group_option_composes(config: str, group: str, option: str) -> None:
    _, resolved = _compose(config, [f"{group}={option}"])
    assert HydraConfig.get().runtime.choices[group] == option


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_experiments_compose(experiment: str) -> None:
    _compose("train", [f"experiment={experiment}"])


@pytest.mark.parametrize("search", _options("hparams_search"))
def test_hparams_searches_compose(search: str) -> None:
    cfg, _ = _compose("train", [f"hparams_search={search}"])
    assert cfg.hydra.sweeper.params, "a search must sweep something"


def test_bundled_styles_and_defaults_follow_the_papers() -> None:
    _, opt = _compose("optimize", [])
    assert opt["loss"]["style_layers"] == [f"block{i}_conv1" for i in range(1, 6)]
    assert opt["loss"]["content_layers"] == ["block4_conv2"]
    assert Path(opt["style"]["image"]).is_file() and Path(opt["content"]).is_file()
    _, train = _compose("train", [])
    assert train["loss"]["style_layers"] == ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    assert train["loss"]["content_layers"] == ["relu3_3"]
    assert _options("style") == sorted(
        ["udnie", "starry_night", "composition_vii", "impression_sunrise", "great_wave", "raft_of_the_medusa"]
    )


def test_a_typo_fails_to_compose() -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        _compose("optimize", ["loss.stlye_weight=1"])
    with pytest.raises(ConfigCompositionException):
        _compose("optimize", ["style=udine"])


@pytest.mark.parametrize("trainer", _options("trainer"))
def test_trainer_configs_build_a_trainer_from_their_own_arguments(trainer: str) -> None:
    import inspect

    import lightning

    cfg, _ = _compose("train", [f"trainer={trainer}"])
    args = {k for k in cfg.trainer if k != "_target_"}
    assert cfg.trainer._target_ == "lightning.Trainer"
    assert not args - set(inspect.signature(lightning.Trainer).parameters)  # nothing for code to delete first
    if trainer in ("gpu", "ddp"):
        assert cfg.trainer.precision == "bf16-mixed" and cfg.model.channels_last == "auto"
    if trainer == "ddp":
        assert cfg.trainer.strategy == "ddp"


def test_variants_inherit_their_base_and_set_only_what_differs() -> None:
    for group, base in (("noise", "default"), ("data", "folder"), ("trainer", "default")):
        for option in _options(group):
            if option == base:
                continue
            text = OmegaConf.create((CONF_DIR / group / f"{option}.yaml").read_text())
            if "_target_" in text:  # another constructor (data=video): not a variant of the base
                base_target = OmegaConf.load(CONF_DIR / group / f"{base}.yaml")._target_
                assert text._target_ != base_target, (group, option)
                continue
            assert text.defaults[0] in (base, "default", "gpu"), (group, option)
            assert "_target_" not in text, (group, option)  # inherited, not repeated
    _, off = _compose("train", ["noise=off"])
    assert off["noise"]["pixels"] == 0 and off["noise"]["range"] == 30


def test_the_known_noise_commands_keep_working() -> None:
    _, run = _compose("train", ["style=udnie", "noise.pixels=1000", "noise.range=20"])
    assert run["noise"]["pixels"] == 1000 and run["noise"]["range"] == 20
    assert run["loss"]["noise_weight"] == 1000.0  # the weight is a loss weight


def test_the_pixel_optimizer_group_cannot_reach_training() -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        _compose("train", ["optimizer=adam"])
    _, run = _compose("train", ["net_optimizer.lr=0.01"])
    assert run["net_optimizer"]["lr"] == 0.01 and "optimizer" not in run


def test_experiment_and_sweep_configs_name_real_keys() -> None:
    cfg, _ = _compose("train", ["experiment=train_udnie_stable", "data.root=/somewhere"])
    assert cfg.task_name == "udnie_stable" and cfg.noise.pixels == 1000 and cfg.trainer.precision == "bf16-mixed"
    assert cfg.loss.noise_weight == 1000.0
    assert cfg.data.root == "/somewhere"  # command-line overrides still win over the experiment
    for p in (CONF_DIR / "experiment").glob("*.yaml"):  # each names its command: train_*, or its usage line
        assert p.stem.split("_")[0] in PRIMARY or f".py experiment={p.stem}" in p.read_text(), p.stem
    sweep = OmegaConf.load(CONF_DIR / "hparams_search" / "optuna.yaml")
    for key in sweep.hydra.sweeper.params:
        assert OmegaConf.select(cfg, key) is not None, key
    assert sweep.optimized_metric == cfg.optimized_metric
