"""``--help`` of each entry point: a purpose line, examples, and only the groups and keys that command reads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.helpers import compose_config

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("optimize", "train", "infer", "evaluate", "web")


@pytest.fixture(scope="module", params=COMMANDS)
def helped(request: pytest.FixtureRequest) -> tuple[str, str]:
    done = subprocess.run([sys.executable, str(ROOT / f"{request.param}.py"), "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return request.param, done.stdout


def _section(text: str, title: str) -> list[str]:
    """The first words of the indented lines under the heading that starts with ``title``."""
    block = text.split(f"\n{title}", 1)[1].split("\n\n", 1)[0]
    words = [line.split()[0] for line in block.splitlines()[1:] if line.startswith("  ") and line[2] != " "]
    assert words, f"no entries under {title}"
    return [word.split("=")[0] for word in words]


def test_purpose_line_examples_and_no_config_dump(helped: tuple[str, str]) -> None:
    name, text = helped
    assert text.startswith(f"{name}.py: ") and "powered by Hydra" not in text
    examples = [line for line in text.splitlines() if line.strip().startswith(f"python {name}.py ")]
    assert 3 <= len(examples) <= 5, examples
    assert "== Config ==" not in text and "root_dir:" not in text


def test_every_key_shown_is_one_of_the_commands_own(helped: tuple[str, str]) -> None:
    name, text = helped
    cfg = compose_config(name, ["weights=x.pt"] if name == "infer" else [])
    for key in _section(text, "Keys"):
        node = cfg
        for part in key.split("."):
            assert OmegaConf.is_dict(node) and part in node, f"{name}.py --help shows {key}, not in its config"
            node = node._get_node(part)
    for group in _section(text, "Group") if "\nGroup" in text else []:  # web.py has no group
        for part in filter(None, re.split(r",\s*", group)):
            assert part in cfg or (ROOT / "conf" / part).is_dir(), f"{name}.py --help shows a group {part} it lacks"


def test_infer_help_leaves_out_the_training_groups() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "infer.py"), "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)  # fmt: skip
    text = done.stdout
    assert done.returncode == 0 and "python infer.py" in text, done.stderr
    for group in ("trainer", "data", "loss", "noise", "net_optimizer", "callbacks"):
        assert not re.search(rf"\b{group}\b", text), f"infer.py --help mentions {group}"
