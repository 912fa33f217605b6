"""The import rules of the package, read from the source with ``ast`` (see docs/architecture.md):

1. ``errors`` imports nothing of nst; ``io`` and ``flow`` import only ``errors`` (and themselves).
2. The core, ``encoders``, ``losses``, ``color``, ``metrics``, ``tracking``, takes tensors in and gives tensors
   out: it imports ``errors``, ``flow`` (E_warp needs flows) and itself, never ``io`` (no arrow up to files).
3. ``gatys`` and ``fastnet`` import rules 1 and 2, never each other; ``evaluation`` may import both.
4. Lightning only in ``fastnet/{module,data,video_data}.py`` and ``fastnet/callbacks/``; weights and
   ``fastnet/infer/`` (export included) load without it.
5. Hydra and OmegaConf only in ``app/``, ``web/`` (the local web page composes the commands' configs) and the
   entry points.
6. ``app/`` and ``web/`` are the wiring and may import every unit; only they import ``web``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nst"
ENTRY_POINTS = sorted(ROOT.glob("*.py"))
RULE1 = {"errors", "io", "flow"}
CORE_MAY_IMPORT = {"errors", "flow"}
RULE2 = {"encoders", "losses", "color", "metrics", "tracking"}
#: Lightning's homes: the LightningModule, the DataModules (video_data.py would push data.py past 300 lines), and
#: what watches a run (callbacks/, its loggers included).
LIGHTNING_FILES = {"nst/fastnet/module.py", "nst/fastnet/data.py", "nst/fastnet/video_data.py"}
LIGHTNING_FOLDERS = ("nst/fastnet/callbacks/",)
MAX_LINES = 300
#: The wiring to Hydra: the entry points' bodies (app/) and the local web page (web/).
WIRING = ("app", "web")


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _is_main_block(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":``: run as a command only, never on import (nst/metrics.py's alias)."""
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__")


def _imports(path: Path) -> set[str]:
    """Every module name imported by ``path``, lazy imports too (absolute names; relative imports resolved);
    a module-level ``if __name__ == "__main__":`` block is left out."""
    names = set()
    tree = ast.parse(path.read_text(), str(path))
    tree.body = [node for node in tree.body if not _is_main_block(node)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
                names.add(f"{base}.{node.module}" if node.module else base)
            else:
                names.add(node.module or "")
                names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _unit(module: str) -> str | None:
    """The layer unit of an ``nst.*`` name: the subpackage or top-level module after ``nst.``."""
    parts = module.split(".")
    return parts[1] if parts[0] == "nst" and len(parts) > 1 else None


def _nst_units(path: Path) -> set[str]:
    own = _unit(".".join(path.relative_to(ROOT).with_suffix("").parts))
    units = {_unit(name) for name in _imports(path)} - {None, own}
    # `from nst import color` names the unit in the alias; keep only real units
    return {u for u in units if (PACKAGE / u).exists() or (PACKAGE / f"{u}.py").exists()}


def _unit_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_module_imports_only_what_its_layer_may(path: Path) -> None:
    unit, used = _unit_of(path), _nst_units(path)
    if unit in ("errors", "__init__"):
        allowed: set[str] = set()
    elif unit in ("io", "flow"):
        allowed = {"errors"}
    elif unit in RULE2:
        allowed = CORE_MAY_IMPORT | RULE2
    elif unit in ("gatys", "fastnet"):
        allowed = RULE1 | RULE2
    elif unit == "evaluation":
        allowed = RULE1 | RULE2 | {"gatys", "fastnet"}
    else:  # app and web: the wiring, may use everything
        assert unit in WIRING, f"{path.relative_to(ROOT)}: unit {unit!r} has no import rule"
        allowed = used
    assert used <= allowed, f"{path.relative_to(ROOT)} imports {sorted(used - allowed)}"


@pytest.mark.parametrize("path", [*_sources(), *ENTRY_POINTS], ids=lambda p: str(p.relative_to(ROOT)))
def test_frameworks_stay_where_they_belong(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    tops = {name.split(".")[0] for name in _imports(path)}
    if rel not in LIGHTNING_FILES and not rel.startswith(LIGHTNING_FOLDERS):
        assert not tops & {"lightning", "pytorch_lightning"}, f"{rel} imports Lightning"
    if not (rel.startswith(tuple(f"nst/{unit}/" for unit in WIRING)) or path in ENTRY_POINTS):
        assert not tops & {"hydra", "omegaconf"}, f"{rel} imports Hydra/OmegaConf"


def test_inference_and_export_load_without_lightning_and_hydra() -> None:
    code = (
        "import sys; import nst.fastnet.weights, nst.fastnet.infer.jobs, nst.fastnet.infer.engines, "
        "nst.fastnet.infer.portable; "
        "bad = [m for m in ('lightning', 'pytorch_lightning', 'hydra', 'omegaconf') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("path", [*_sources(), *ENTRY_POINTS], ids=lambda p: str(p.relative_to(ROOT)))
def test_files_stay_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    limit = 100 if path in ENTRY_POINTS else MAX_LINES
    assert lines <= limit, f"{path.relative_to(ROOT)} has {lines} lines (at most {limit})"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """nst module -> the nst modules it imports (``from a import b`` counts as a.b when that is a module)."""
    modules = {_module_name(p): p for p in _sources()}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for imported in _imports(path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported != "nst":
                edges.add(imported)
        graph[name] = edges
    return graph


def test_no_import_cycle() -> None:
    """No module reaches itself through imports, lazy ones included (hed <-> vgg was one)."""
    graph = _graph()
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            cycle = stack[stack.index(name):] + [name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for other in sorted(graph.get(name, ())):
            if not other.startswith(name + "."):  # a package's __init__ re-exporting its own modules is no cycle
                visit(other, [*stack, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


@pytest.mark.parametrize("unit", sorted(RULE2))
def test_no_arrow_up_from_the_core_to_io(unit: str) -> None:
    paths = [PACKAGE / f"{unit}.py"] if (PACKAGE / f"{unit}.py").exists() else sorted((PACKAGE / unit).rglob("*.py"))
    assert paths
    for path in paths:
        assert "io" not in _nst_units(path), f"{path.relative_to(ROOT)} imports nst.io"


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from nst.gatys.loop import LoopSettings\nimport lightning as L\n")
    assert "nst.gatys.loop" in _imports(bad) and "lightning" in _imports(bad)
    assert _unit("nst.gatys.loop") == "gatys" and _unit("nst") is None
    main = tmp_path / "main.py"
    main.write_text("import torch\n\nif __name__ == '__main__':\n    from nst.evaluation.measure import main\n")
    assert _imports(main) == {"torch"}
