"""Every DVC stage lists, as deps, all of `core` its command can execute.

DVC is a cache keyed by the deps: a core module a stage imports but does not list could change its
results without making it stale. The entry of a stage is the notebook papermill runs or the module of
`python -m core...`; its closure is every `core` module reachable through absolute `import`/`from`
statements (also inside functions, so a lazy import counts). A dep covers a file when it is that file
or a folder above it. Relative imports are not followed: core uses absolute imports only (checked).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
DVC_FILES = [ROOT / "dvc.yaml", *sorted(ROOT.glob("papers/*/dvc.yaml"))]


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for cand in (base / "__init__.py", base.with_suffix(".py")):
        if cand.is_file():
            return cand
    return None


def _core_imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return {m for m in found if m == "core" or m.startswith("core.")}


def core_closure(source: str) -> set[Path]:
    """Files of every core module (and parent package) reachable from `source`'s imports."""
    seen: set[Path] = set()
    todo = _core_imports(source)
    while todo:
        module = todo.pop()
        path = _module_file(module)
        parts = module.split(".")
        todo |= {".".join(parts[:i]) for i in range(1, len(parts))}
        if path is None or path in seen:
            continue
        seen.add(path)
        todo |= _core_imports(path.read_text())
    return seen


def _notebook_source(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return "\n".join(c for c in code if not c.lstrip().startswith(("%", "!")))


def _entry_source(cmd: str, wdir: Path) -> str | None:
    if m := re.search(r"papermill\s+(?:--\S+\s+\S+\s+)*(\S+\.ipynb)", cmd):
        return _notebook_source(wdir / m.group(1))
    if m := re.search(r"python -m (core[\w.]*)", cmd):
        return f"import {m.group(1)}"
    return None


def _stages():
    for dvc_file in DVC_FILES:
        for name, stage in yaml.safe_load(dvc_file.read_text())["stages"].items():
            yield pytest.param(dvc_file, stage, id=f"{dvc_file.relative_to(ROOT)}:{name}")


@pytest.mark.parametrize(("dvc_file", "stage"), list(_stages()))
def test_stage_deps_cover_the_core_it_runs(dvc_file: Path, stage: dict) -> None:
    wdir = dvc_file.parent / stage.get("wdir", ".")
    cmd = " ".join(stage["cmd"]) if isinstance(stage["cmd"], list) else stage["cmd"]
    source = _entry_source(cmd, wdir)
    assert source is not None, f"no notebook or `python -m core...` entry found in {cmd!r}"
    deps = [(wdir / d).resolve() for d in stage.get("deps", []) if "${" not in d.split("/")[0]]
    missing = sorted(
        str(f.relative_to(ROOT)) for f in core_closure(source)
        if not any(f == d or d in f.parents for d in deps)
    )
    assert not missing, f"deps miss core files the stage runs: {missing}"


def test_closure_follows_lazy_imports_and_parents() -> None:
    files = {str(p.relative_to(ROOT)) for p in core_closure("from core.models.world_lms import resolve_model")}
    assert {"core/__init__.py", "core/models/__init__.py", "core/models/world_lms.py"} <= files
    assert "core/models/pretrain.py" in files  # imported inside ensure_world_lm only
    assert "core/locate/__init__.py" not in files


def test_core_has_no_relative_imports() -> None:
    for path in ROOT.glob("core/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            assert not (isinstance(node, ast.ImportFrom) and node.level), f"{path}: relative import"
