"""pyproject.toml: every dependency has a floor, the floors cover the APIs the code calls, and what is
installed here (where the suite passes) satisfies them."""

from __future__ import annotations

import inspect
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself depends on tomli before Python 3.11
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
#: The oldest versions with an API we call: ``Trainer.fit(..., weights_only=)`` and
#: ``ImageFont.load_default(size=)``, which the first sample grid of a training run needs.
NEEDED = {"lightning": "2.6", "pillow": "10.1"}


def _requirements(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    specs = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(spec) for spec in specs]


def _floor(req: Requirement) -> Version | None:
    floors = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    return max(floors) if floors else None


@pytest.mark.parametrize("req", [*_requirements(), *_requirements("dev")], ids=str)
def test_every_dependency_has_a_floor_that_is_installed_here(req: Requirement) -> None:
    assert _floor(req) is not None, f"{req.name} has no lower bound"
    try:
        installed = version(req.name)
    except PackageNotFoundError:
        pytest.fail(f"{req.name} is not installed: pip install -e '.[dev]'")
    assert req.specifier.contains(installed), f"{req.name} {installed} is installed, pyproject asks {req}"


def test_floors_cover_the_apis_we_call() -> None:
    floors = {req.name: _floor(req) for req in _requirements()}
    for name, needed in NEEDED.items():
        assert floors[name] >= Version(needed), f"{name}>={floors[name]} is too low: it needs {needed}"
    import lightning
    from PIL import ImageFont

    assert "weights_only" in inspect.signature(lightning.Trainer.fit).parameters
    assert "size" in inspect.signature(ImageFont.load_default).parameters
