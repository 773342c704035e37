"""collect_runs reads run folders into tidy rows; knowedit_columns maps them to Table 4 columns x100."""

from __future__ import annotations

import math

import pytest

from core.eval.report import collect_runs, knowedit_columns
from core.io import write_json


def _run(root, name, method, metrics):
    write_json(root / name / "metrics.json", metrics)
    write_json(root / name / "manifest.json", {"parameters": {
        "method": method, "model": "m", "dataset": "zsre", "protocol": "single", "n_edits": 2}})


def test_collect_and_knowedit_columns(tmp_path):
    _run(tmp_path, "b", "FT-M", {"single_edit_restore/reliability": 0.5, "single_edit_restore/locality": 0.25,
                                 "n_edits": 2})
    _run(tmp_path, "a", "FT-L", {"single_edit_restore/reliability": 1.0, "single_edit_restore/portability": 0.1,
                                 "single_edit_restore/fluency": 5.5, "n_edits": 2})
    runs = collect_runs(tmp_path)
    assert list(runs["run"]) == ["a", "b"]
    table = knowedit_columns(runs)
    assert table.loc[0, "Edit Succ."] == 100.0 and table.loc[0, "Fluency"] == 550.0
    assert table.loc[0, "Portability"] == pytest.approx(10.0)
    assert math.isnan(table.loc[0, "Locality"]) and table.loc[1, "Locality"] == 25.0


def test_collect_runs_empty_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        collect_runs(tmp_path)
