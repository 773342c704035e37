"""Record counts of the datasets in a data tree, and the KnowEdit benchmark's structure (KnowEdit §3.4,
Table 3).

`count_records(root, name)` counts one dataset of `core.data.trees.DATASETS` two ways: the raw JSON
records of the file (per part for the Sanitation object layout) and the `EditRequest`s its reader
returns (which also validates the file; a reader error names file, record and field). A missing file
is a row with status "absent" and no counts, so any data root works: the synthetic world, or a real
KnowEdit download (which, for example, has no ZsRE train file).

`KNOWEDIT_TABLE3` lists the six KnowEdit datasets with the paper's Setting and Type columns and the
splits whose edit requests the table counts (papers.md §2.2). ZsRE's train split is the MEND
`zsre_mend_train.json` layout (the paper's `zsre_mend_train_10000.json`, not part of the KnowEdit
dump); Sanitation counts its edit parts, K_F (train) and success (test), as the paper's 80/80 does.
`compare_counts` puts another source's counts (e.g. the paper's, by version) beside ours.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.data import read_requests
from core.data.fields import load_json
from core.data.trees import DATASETS


@dataclass(frozen=True)
class BenchmarkDataset:
    """One column of KnowEdit Table 3: label, setting, type, and the splits it counts."""

    label: str  # the paper's column name
    setting: str  # Insertion | Modification | Erasure (KnowEdit Eqs. 3-7)
    kind: str  # the "Type" row
    train: str | None  # core.data.trees name of the train split
    test: str
    part: tuple[str | None, str | None] = (None, None)  # (train part, test part) counted; None = all


KNOWEDIT_TABLE3: tuple[BenchmarkDataset, ...] = (
    BenchmarkDataset("Wiki_recent", "Insertion", "Fact", "recent-train", "recent"),
    BenchmarkDataset("ZsRE", "Modification", "QA", "zsre-mend-train", "zsre"),
    BenchmarkDataset("WikiBio", "Modification", "Hallucination", "wikibio-train", "wikibio"),
    BenchmarkDataset("Wiki_counterfact", "Modification", "Counterfact", "counterfact-train", "counterfact"),
    BenchmarkDataset("ConvSent", "Modification", "Sentiment", "convsent-train", "convsent"),
    BenchmarkDataset(
        "Sanitation", "Erasure", "Unwanted info", "sanitation-train", "sanitation", part=("K_F", "success")
    ),
)


def _raw_counts(path: Path) -> dict[str | None, int]:
    """Raw records of a JSON file: {None: n} for a top-level array, {part: n} for an object of arrays."""
    data = load_json(path)
    if isinstance(data, list):
        return {None: len(data)}
    if isinstance(data, dict):
        return {k: len(v) for k, v in data.items() if isinstance(v, list)}
    return {None: 0}


def count_records(root: str | Path, name: str) -> list[dict[str, Any]]:
    """Rows (dataset, layout, file, part, status, records, requests) for dataset `name` under `root`."""
    try:
        layout, rel = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None
    path = Path(root) / rel
    base = {"dataset": name, "layout": layout, "file": rel}
    if not path.is_file():
        return [{**base, "part": None, "status": "absent", "records": None, "requests": None}]
    raw = _raw_counts(path)
    parts = Counter(r.extras.get("part") for r in read_requests(layout, path))
    keys = list(dict.fromkeys([*raw, *parts]))
    return [
        {**base, "part": k, "status": "ok", "records": raw.get(k), "requests": parts.get(k, 0)} for k in keys
    ]


def count_tree(root: str | Path, names: tuple[str, ...] | None = None) -> pd.DataFrame:
    """`count_records` for every name (all of DATASETS by default), as one tidy frame."""
    rows = [row for n in (names or tuple(DATASETS)) for row in count_records(root, n)]
    return pd.DataFrame(rows)


def _edit_count(counts: pd.DataFrame, name: str | None, part: str | None) -> float:
    if name is None:
        return float("nan")
    rows = counts[counts["dataset"] == name]
    if part is not None:
        rows = rows[rows["part"] == part]
    if rows.empty or (rows["status"] != "ok").any():
        return float("nan")
    return float(rows["requests"].sum())


def knowedit_table3(root: str | Path) -> pd.DataFrame:
    """KnowEdit Table 3 on the tree at `root`: one row per dataset, #Train/#Test edit requests (NaN if absent)."""
    names = tuple(n for d in KNOWEDIT_TABLE3 for n in (d.train, d.test) if n is not None)
    counts = count_tree(root, names)
    return pd.DataFrame(
        [
            {
                "dataset": d.label,
                "setting": d.setting,
                "type": d.kind,
                "train": _edit_count(counts, d.train, d.part[0]),
                "test": _edit_count(counts, d.test, d.part[1]),
                "train_file": DATASETS[d.train][1] if d.train else "",
                "test_file": DATASETS[d.test][1],
            }
            for d in KNOWEDIT_TABLE3
        ]
    )


def compare_counts(ours: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """`ours` (dataset, train, test, ...) with `<split> (<version>)` columns for each version of `other`.

    `other` is tidy: columns dataset, split ("train"/"test"), count, version. Columns come per version
    (first-seen order), train before test; a version without a split has no column. Unknown datasets raise.
    """
    unknown = sorted(set(other["dataset"]) - set(ours["dataset"]))
    if unknown:
        raise ValueError(f"counts for datasets not in the table: {unknown}")
    wide = other.assign(column=other["split"] + " (" + other["version"] + ")")
    wide = wide.pivot_table(index="dataset", columns="column", values="count", aggfunc="first", sort=False)
    order = [f"{s} ({v})" for v in dict.fromkeys(other["version"]) for s in ("train", "test")]
    wide = wide[[c for c in order if c in wide.columns]]  # per version, train then test
    return ours.merge(wide.reset_index(), on="dataset", how="left")
