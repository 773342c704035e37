"""Collect run folders into tidy tables and format them the way a paper typesets them.

A run folder is what `core.eval.experiment.run_experiment` writes (metrics.json + manifest.json).
`collect_runs` gives one tidy row per run (method, model, dataset, protocol, every metric);
`knowedit_columns` maps our metric names onto KnowEdit Table 4's columns (Edit Succ., Portability,
Locality, Fluency; easyedit-notes §3.1 "KnowEdit scoring": means over cases x100, fluency x100;
ConvSent's Edit Succ. is z_sent * z_topic and its Locality the KL drawdown, Eqs. 12-13).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

_SPEC_COLUMNS = ("method", "model", "dataset", "protocol", "n_edits")


def collect_runs(runs_dir: str | Path) -> pd.DataFrame:
    """One row per run folder under `runs_dir` (sorted by folder name): run, path, spec columns, flat metrics."""
    rows = []
    for metrics_file in sorted(Path(runs_dir).glob("*/metrics.json")):
        manifest = json.loads((metrics_file.parent / "manifest.json").read_text())
        spec = manifest["parameters"]
        row = {"run": metrics_file.parent.name, "path": str(metrics_file.parent),
               **{k: spec[k] for k in _SPEC_COLUMNS if k in spec}}  # fmt: skip
        row.update(json.loads(metrics_file.read_text()))
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"no run folders with metrics.json under {runs_dir}")
    return pd.DataFrame(rows)


# KnowEdit Table 4 column -> our metric names, first present wins (facts, ConvSent, Sanitation suites)
TABLE4_METRICS: dict[str, tuple[str, ...]] = {
    "Edit Succ.": ("reliability", "es", "edit_succ"),
    "Portability": ("portability",),
    "Locality": ("locality", "dd"),
    "Fluency": ("fluency",),
}
_UNSCALED = {"dd"}  # ConvSent KL drawdown is reported as is (lower is better), not x100
TIMINGS = ("single_edit_restore", "batch_edit_restore", "after_all_T")


def _cell(row: pd.Series, timing: str, names: tuple[str, ...]) -> float:
    for name in names:
        value = row.get(f"{timing}/{name}")
        if value is not None and not pd.isna(value):
            return float(value) if name in _UNSCALED else float(value) * 100
    return float("nan")


def run_timing(row: pd.Series) -> str:
    """The post-edit timing a run was evaluated under (the first of `TIMINGS` with a value)."""
    for timing in TIMINGS:
        if any(str(k).startswith(f"{timing}/") and not pd.isna(v) for k, v in row.items()):
            return timing
    raise ValueError(f"run {row.get('run')!r} has no post-edit metrics under {TIMINGS}")


def knowedit_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """KnowEdit Table 4 columns from tidy runs: x100, except ConvSent's KL locality (lower is better).

    Each run's own timing is used (single edits for the fact datasets, after all T for Sanitation);
    absent metrics are NaN.
    """
    rows = []
    for _, row in runs.iterrows():
        timing = run_timing(row)
        cells = {col: _cell(row, timing, names) for col, names in TABLE4_METRICS.items()}
        rows.append(
            {
                "dataset": row["dataset"],
                "model": row["model"],
                "method": row["method"],
                **cells,
                "n_edits": row["n_edits"],
                "timing": timing,
            }
        )
    return pd.DataFrame(rows)


def beside_paper(ours: pd.DataFrame, paper: pd.DataFrame, *, paper_label: str) -> pd.DataFrame:
    """Wide table: rows (dataset, method), column groups one per model of `ours` plus `paper_label`.

    `ours` is `knowedit_columns` output; `paper` has dataset, method and the Table 4 column names (the
    paper's printed values, e.g. papers/knowedit/paper/table04_nov2024.csv). Rows keep `ours`' order of
    datasets and methods; a paper row without a run of ours is dropped, a missing paper value is NaN.
    """
    metrics = list(TABLE4_METRICS)
    wide = ours.pivot_table(index=["dataset", "method"], columns="model", values=metrics, sort=False)
    wide = wide.swaplevel(0, 1, axis=1)
    models = list(dict.fromkeys(ours["model"]))
    wide = wide.reindex(columns=pd.MultiIndex.from_product([models, metrics]))
    ref = paper.set_index(["dataset", "method"])[metrics]
    ref.columns = pd.MultiIndex.from_product([[paper_label], metrics])
    return wide.join(ref, how="left")


def submetrics(runs: pd.DataFrame, family: str) -> pd.DataFrame:
    """Tidy rows (model, method, dataset, key, value x100) of `family`'s per-key means ("portability"/"locality").

    Reads each run's "<timing>/<family>/<key>" columns under the run's own timing (KnowEdit Fig. 3:
    Subject_Aliasing, Reasoning, Logical_Generalization; Relation_Specificity, Forgetfulness).
    """
    rows = []
    for _, row in runs.iterrows():
        prefix = f"{run_timing(row)}/{family}/"
        for col, value in row.items():
            if str(col).startswith(prefix) and not pd.isna(value):
                rows.append(
                    {
                        "model": row["model"],
                        "method": row["method"],
                        "dataset": row["dataset"],
                        "key": str(col)[len(prefix) :],
                        "value": float(value) * 100,
                    }
                )
    return pd.DataFrame(rows, columns=["model", "method", "dataset", "key", "value"])
