"""Collect run folders into tidy tables and format them the way a paper typesets them.

A run folder is what `core.eval.experiment.run_experiment` writes (metrics.json + manifest.json).
`collect_runs` gives one tidy row per run (method, model, dataset, protocol, every metric);
`knowedit_columns` maps our metric names onto KnowEdit Table 4's columns (Edit Succ., Portability,
Locality, Fluency; easyedit-notes §3.1 "KnowEdit scoring": means over cases x100, fluency x100).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

_SPEC_COLUMNS = ("method", "model", "dataset", "protocol", "n_edits")


def collect_runs(runs_dir: str | Path) -> pd.DataFrame:
    """One row per run folder under `runs_dir` (sorted by folder name): spec columns + flat metrics."""
    rows = []
    for metrics_file in sorted(Path(runs_dir).glob("*/metrics.json")):
        manifest = json.loads((metrics_file.parent / "manifest.json").read_text())
        spec = manifest["parameters"]
        row = {"run": metrics_file.parent.name, **{k: spec[k] for k in _SPEC_COLUMNS if k in spec}}
        row.update(json.loads(metrics_file.read_text()))
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"no run folders with metrics.json under {runs_dir}")
    return pd.DataFrame(rows)


def knowedit_columns(runs: pd.DataFrame, timing: str = "single_edit_restore") -> pd.DataFrame:
    """KnowEdit Table 4 columns (x100) from tidy runs evaluated under `timing`; absent metrics are NaN."""
    def col(name: str) -> pd.Series:
        key = f"{timing}/{name}"
        return runs[key] * 100 if key in runs else pd.Series(float("nan"), index=runs.index)

    return pd.DataFrame({
        "dataset": runs["dataset"], "model": runs["model"], "method": runs["method"],
        "Edit Succ.": col("reliability"), "Portability": col("portability"),
        "Locality": col("locality"), "Fluency": col("fluency"), "n_edits": runs["n_edits"],
    })
