"""Notebook conventions: stripped outputs, H1 + artifact line first, a `parameters` cell, and every
papermill `-p NAME` in a dvc.yaml stage naming a real parameter of that notebook."""

from __future__ import annotations

import json
import re

import papermill
import pytest
import yaml

from tests.repo.conftest import ROOT, stored_notebooks

NOTEBOOKS = stored_notebooks()
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=IDS)
def test_notebook_is_stripped(nb):
    cells = json.loads(nb.read_text())["cells"]
    dirty = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{nb.name}: cells {dirty} carry outputs; run nbstripout"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=IDS)
def test_notebook_header_and_parameters_cell(nb):
    cells = json.loads(nb.read_text())["cells"]
    first = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# "), "first cell must be an H1 title"
    assert "\n> " in first, "first cell must name the artifact in a blockquote"
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    for line in "".join(tagged[0]["source"]).splitlines():
        if line.strip():
            assert re.match(r"^\w+\s*=\s*.+#\s*\S", line), (
                f"parameter line needs a literal and a comment: {line!r}"
            )


def _papermill_stages():
    for dvc_file in sorted(ROOT.glob("**/dvc.yaml")):
        if ".venv" in dvc_file.parts:
            continue
        stages = yaml.safe_load(dvc_file.read_text()).get("stages", {})
        for name, stage in stages.items():
            cmd = stage.get("cmd", "")
            cmd = " ".join(cmd) if isinstance(cmd, list) else cmd
            if "papermill" in cmd:
                yield dvc_file, name, cmd


STAGES = list(_papermill_stages())


@pytest.mark.parametrize("dvc_file,name,cmd", STAGES, ids=[f"{d.parent.name}:{n}" for d, n, _ in STAGES])
def test_papermill_parameters_exist(dvc_file, name, cmd):
    cmd = cmd[cmd.index("papermill") :]  # what precedes papermill (e.g. `mkdir -p`) is not its options
    m = re.search(r"papermill\b.*?\s(\S+\.ipynb)\s", cmd)
    assert m, f"{dvc_file}:{name}: cannot find the input notebook"
    nb = dvc_file.parent / m.group(1)
    declared = set(papermill.inspect_notebook(str(nb)))
    passed = set(re.findall(r"-p\s+(\w+)", cmd))
    missing = sorted(passed - declared)
    assert not missing, f"{dvc_file}:{name}: -p {missing} not in {nb.name}'s parameters cell"


def test_there_are_notebook_stages():
    assert STAGES, "no papermill stage found in any dvc.yaml"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=IDS)
def test_every_notebook_is_run_by_a_stage_of_its_paper(nb):
    dvc_file = nb.parent / "dvc.yaml"
    inputs = (re.search(r"papermill\b.*?(\S+\.ipynb)", cmd) for d, _, cmd in STAGES if d == dvc_file)
    ran = {m.group(1) for m in inputs if m}
    assert nb.name in ran, f"{nb.relative_to(ROOT)}: no stage of {dvc_file.relative_to(ROOT)} runs it (dvc repro would skip it)"
