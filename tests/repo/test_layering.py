"""Dependency rules: core never imports papers, papers never import each other, no cuda literals in core."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess

import pytest

from tests.repo.conftest import ROOT, stored_notebooks

PAPERS = ("knowedit", "instructedit", "wise")


def _imports(source: str) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
    return mods


def test_core_never_imports_papers():
    bad = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "core").rglob("*.py")
        if any(m == "papers" or m.startswith("papers.") for m in _imports(p.read_text()))
    ]
    assert not bad, f"core modules importing papers: {bad}"


@pytest.mark.parametrize("nb", stored_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_import_only_core_and_their_own_paper(nb):
    own = nb.relative_to(ROOT / "papers").parts[0]
    cells = json.loads(nb.read_text())["cells"]
    src = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
    others = {f"papers.{p}" for p in PAPERS if p != own}
    bad = [m for m in _imports(src) if any(m == o or m.startswith(o + ".") for o in others)]
    assert not bad, f"{nb.name} imports another paper: {bad}"


def test_no_hardcoded_cuda_in_core_or_notebooks():
    pat = re.compile(r"""\.cuda\(|["']cuda(:\d+)?["']""")
    files = list((ROOT / "core").rglob("*.py")) + stored_notebooks()
    bad = [str(p.relative_to(ROOT)) for p in files if pat.search(p.read_text())]
    assert not bad, f"hard-coded cuda device in: {bad}"


def test_no_absolute_paths_in_core():
    pat = re.compile(r"""["'](/work/|/root/|/home/|/tmp/)""")
    bad = [str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*.py") if pat.search(p.read_text())]
    assert not bad, f"absolute paths in core: {bad}"


@pytest.mark.skipif(
    shutil.which("lint-imports") is None and not (ROOT / ".venv/bin/lint-imports").exists(),
    reason="import-linter not installed",
)
def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports") or str(ROOT / ".venv/bin/lint-imports")
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
