"""cross_domain labels each trained-editor run by the source its archive's manifest records (Table 6)."""

from __future__ import annotations

import pytest
import yaml

from core.eval.cross_domain import cross_domain_runs, cross_domain_table, source_of_split, training_sources
from core.io import atomic_write_text, write_json


def _editor(root, name, params):
    write_json(root / name / "manifest.json", {"parameters": params})
    return root / name


def _run(root, name, method, dataset, archive, es):
    write_json(root / name / "metrics.json", {"single_edit_restore/reliability": es, "n_edits": 2})
    write_json(root / name / "manifest.json",
               {"parameters": {"method": method, "model": "m", "dataset": dataset, "protocol": "single", "n_edits": 2}})  # fmt: skip
    atomic_write_text(root / name / "hparams.yaml", yaml.safe_dump({"archive": str(archive)} if archive else {"lr": 1}))


def test_source_of_split():
    assert source_of_split("zsre-mend-train") == "zsre"
    assert source_of_split("recent-train") == "recent"
    with pytest.raises(ValueError, match="not a train split"):
        source_of_split("recent")


def test_training_sources_read_mend_and_serac_manifests(tmp_path):
    mend = _editor(tmp_path, "mend", {"train_data": "recent-train"})
    serac = _editor(tmp_path, "serac", {"config": {"train_datasets": ["zsre-mend-train", "counterfact-train"]}})
    assert training_sources(mend / "editor.pt") == ("recent",)
    assert training_sources(serac) == ("zsre", "counterfact")
    bad = _editor(tmp_path, "bad", {"model": "m"})
    with pytest.raises(ValueError, match="bad/manifest.json: field parameters.train_data"):
        training_sources(bad)
    with pytest.raises(ValueError, match="nowhere/manifest.json"):
        training_sources(tmp_path / "nowhere" / "editor.pt")


def test_cross_domain_runs_keep_single_source_transfers_in_order(tmp_path):
    from_recent = _editor(tmp_path / "editors", "mend-recent", {"train_data": "recent-train"})
    from_zsre = _editor(tmp_path / "editors", "mend-zsre", {"train_data": "zsre-mend-train"})
    multi = _editor(tmp_path / "editors", "serac-all", {"config": {"train_datasets": ["zsre-mend-train", "recent-train"]}})
    a, b = tmp_path / "a", tmp_path / "b"
    _run(a, "r1", "MEND", "zsre", from_recent / "editor.pt", 0.5)      # recent => zsre: kept
    _run(a, "r2", "MEND", "counterfact", from_recent / "editor.pt", 0.25)  # recent => counterfact: kept
    _run(b, "r3", "MEND", "recent", from_zsre / "editor.pt", 1.0)      # zsre => recent: kept
    _run(b, "r4", "MEND", "wikibio", from_zsre / "editor.pt", 1.0)     # not a requested transfer
    _run(b, "r5", "SERAC", "recent", multi, 1.0)                       # several sources
    _run(b, "r6", "FT-L", "recent", None, 1.0)                         # no trained editor
    transfers = [("zsre", "recent"), ("recent", "counterfact"), ("recent", "zsre")]
    runs = cross_domain_runs([a, b], transfers)
    assert list(runs["run"]) == ["r3", "r2", "r1"]
    table = cross_domain_table(runs)
    assert list(zip(table["source"], table["target"], strict=True)) == transfers
    assert list(table["transfer"]) == ["ZsRE => Wiki_recent", "Wiki_recent => Wiki_counterfact", "Wiki_recent => ZsRE"]
    assert list(table["Edit Succ."]) == [100.0, 25.0, 50.0]
    with pytest.raises(FileNotFoundError, match="no run of an editor trained on one source"):
        cross_domain_runs([b], [("counterfact", "zsre")])
