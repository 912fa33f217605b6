"""Lightning loggers from the shared logger settings (nst.fastnet.loggers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from nst.errors import NSTError
from nst.fastnet.loggers import build_loggers


def test_build_loggers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_DIR", raising=False)
    assert build_loggers(None, tmp_path) == []
    sections = {"csv": {"name": "csv"}, "wandb": {"project": "nst", "mode": "offline", "entity": None}}
    loggers = build_loggers(sections, tmp_path)
    assert [type(lg) for lg in loggers] == [CSVLogger, WandbLogger]
    assert Path(loggers[0].log_dir) == tmp_path / "csv"
    assert Path(loggers[1].save_dir) == tmp_path
    with pytest.raises(NSTError, match="unknown logger"):
        build_loggers({"tensorboard": {}}, tmp_path)


def test_wandb_dir_decides_where_wandb_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    (wandb,) = build_loggers({"wandb": {"mode": "offline"}}, tmp_path / "run")
    assert Path(wandb.save_dir) == tmp_path / "elsewhere"
