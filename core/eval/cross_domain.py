"""Cross-domain editing tables (KnowEdit Table 6): which data a trained editor learned from, per run.

A run of a trained editor (MEND, SERAC) names its archive in the run's `hparams.yaml`; the archive's
own `manifest.json` records the train split(s) it was fitted on (MEND: `train_data`; SERAC:
`config.train_datasets`). `cross_domain_runs` keeps the runs whose editor learned from exactly one
source and whose test split is one of the requested (source, target) transfers, so a table cell is
labelled by what the artifact says it was trained on, not by a folder-name convention.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import yaml

from core.data.stats import KNOWEDIT_TABLE3
from core.eval.report import collect_runs, knowedit_columns

_LABELS = {d.test: d.label for d in KNOWEDIT_TABLE3}  # test split -> the paper's name
_SOURCES = {d.train: d.test for d in KNOWEDIT_TABLE3 if d.train}  # train split -> its test split


def transfer_label(source: str, target: str) -> str:
    """KnowEdit Table 6's column name, e.g. `ZsRE => Wiki_recent` (unknown names are shown as given)."""
    return f"{_LABELS.get(source, source)} => {_LABELS.get(target, target)}"


def source_of_split(split: str) -> str:
    """The test split of a KnowEdit train split (`zsre-mend-train` -> `zsre`; core.data.stats.KNOWEDIT_TABLE3)."""
    try:
        return _SOURCES[split]
    except KeyError:
        raise ValueError(f"{split!r} is not a train split of KnowEdit Table 3 (known: {sorted(_SOURCES)})") from None


def training_sources(archive: str | Path) -> tuple[str, ...]:
    """Source datasets a trained editor archive was fitted on, read from its folder's manifest.json.

    `archive` is a MEND `editor.pt` (its folder holds the manifest) or a SERAC archive folder.
    """
    path = Path(archive)
    folder = path if path.is_dir() else path.parent
    manifest_file = folder / "manifest.json"
    try:
        params = json.loads(manifest_file.read_text())["parameters"]
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise ValueError(f"{manifest_file}: cannot read the editor's training parameters: {e}") from e
    if "train_data" in params:  # MEND (core.hypernet.train)
        splits: Sequence[str] = [params["train_data"]]
    elif "train_datasets" in params.get("config", {}):  # SERAC (core.editors.serac_train)
        splits = params["config"]["train_datasets"]
    else:
        raise ValueError(f"{manifest_file}: field parameters.train_data or parameters.config.train_datasets missing")
    return tuple(source_of_split(s) for s in splits)


def cross_domain_runs(runs_dirs: Sequence[str | Path], transfers: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Tidy runs (as `collect_runs`) of single-source trained editors on the requested transfers.

    Adds `source` and `target` columns; rows follow the order of `transfers`, then method and model.
    Runs without an `archive` in their hparams (untrained methods) are skipped; none left is an error.
    """
    runs = pd.concat([collect_runs(d) for d in runs_dirs], ignore_index=True)
    keep, sources = [], []
    for i, row in runs.iterrows():
        hp = yaml.safe_load((Path(row["path"]) / "hparams.yaml").read_text()) or {}
        if not hp.get("archive"):
            continue
        found = training_sources(hp["archive"])
        if len(found) == 1 and (found[0], row["dataset"]) in transfers:
            keep.append(i)
            sources.append(found[0])
    if not keep:
        raise FileNotFoundError(
            f"no run of an editor trained on one source for the transfers {list(transfers)} under {list(runs_dirs)}"
        )
    out = runs.loc[keep].assign(source=sources, target=runs.loc[keep, "dataset"])
    order = {t: k for k, t in enumerate(transfers)}
    out["_order"] = [order[(s, t)] for s, t in zip(out["source"], out["target"], strict=True)]
    return out.sort_values(["_order", "method", "model"]).drop(columns="_order").reset_index(drop=True)


def cross_domain_table(runs: pd.DataFrame) -> pd.DataFrame:
    """KnowEdit Table 4 columns (x100; Fluency x100) for `cross_domain_runs` output, with the transfer."""
    cols = knowedit_columns(runs)
    cols.insert(0, "transfer", [transfer_label(s, t) for s, t in zip(runs["source"], runs["target"], strict=True)])
    return cols.assign(source=runs["source"].to_numpy(), target=runs["target"].to_numpy())
