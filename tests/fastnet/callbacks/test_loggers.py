"""Lightning loggers from the shared logger settings (nst.fastnet.callbacks.loggers), and resumed curves."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from nst.errors import NSTError
from nst.fastnet.callbacks.loggers import WANDB_ID_FILE, build_loggers


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


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


@pytest.mark.filterwarnings("ignore:.*exists and is not empty")
def test_a_resumed_run_continues_its_csv(tmp_path: Path) -> None:
    (first,) = build_loggers({"csv": {"name": "csv"}}, tmp_path)
    for step in range(6):  # the first run went on to step 5; its checkpoint is at step 3
        first.log_metrics({"loss/total": 10.0 + step}, step=step)
    first.save()
    (resumed,) = build_loggers({"csv": {"name": "csv"}}, tmp_path, resume_step=3)
    for step in (3, 4):
        resumed.log_metrics({"loss/total": 20.0 + step, "val/loss/total": 1.0}, step=step)  # a new column too
    resumed.save()
    rows = read_csv(tmp_path / "csv" / "metrics.csv")
    assert [(int(r["step"]), float(r["loss/total"])) for r in rows] == [(0, 10), (1, 11), (2, 12), (3, 23), (4, 24)]
    assert [r["val/loss/total"] for r in rows] == ["", "", "", "1.0", "1.0"]
    (fresh,) = build_loggers({"csv": {"name": "csv"}}, tmp_path)  # not resuming: a new file, as before
    fresh.log_metrics({"loss/total": 1.0}, step=0)
    fresh.save()
    assert len(read_csv(tmp_path / "csv" / "metrics.csv")) == 1


def test_wandb_run_id_is_stored_and_reused_on_resume(tmp_path: Path) -> None:
    (first,) = build_loggers({"wandb": {"mode": "offline"}}, tmp_path)
    stored = (tmp_path / WANDB_ID_FILE).read_text().strip()
    assert first.version == stored and first._wandb_init["resume"] == "allow"
    (resumed,) = build_loggers({"wandb": {"mode": "offline"}}, tmp_path, resume_step=5)
    assert resumed.version == stored
    (fresh,) = build_loggers({"wandb": {"mode": "offline"}}, tmp_path)  # a new run in an old folder: a new id
    assert fresh.version != stored and (tmp_path / WANDB_ID_FILE).read_text().strip() == fresh.version
    (chosen,) = build_loggers({"wandb": {"mode": "offline", "id": "mine"}}, tmp_path, resume_step=5)
    assert chosen.version == "mine"
