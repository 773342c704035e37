"""Dataset counts (KnowEdit Table 3): a built smoke world, a partial tree in the real KnowEdit layout
(files missing, as in the HF dump), golden counts and the comparison with another source."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from core.data.stats import KNOWEDIT_TABLE3, compare_counts, count_records, count_tree, knowedit_table3
from core.data.trees import DATASETS
from core.world.build import write_world
from core.world.generate import build_world

FIXTURES = Path(__file__).parent / "fixtures" / "knowedit"
REAL_PATHS = {  # fixture file -> its path in the HF zjunlp/KnowEdit dump
    "recent_test.json": "wiki_recent/recent_test.json",
    "ZsRE-test-all.json": "ZsRE/ZsRE-test-all.json",
    "wikibio-test-all.json": "WikiBio/wikibio-test-all.json",
    "test_cf.json": "wiki_counterfact/test_cf.json",
    "blender_test.json": "convsent/blender_test.json",
    "trivia_qa_train.json": "Sanitation/trivia_qa_train.json",
    "trivia_qa_test.json": "Sanitation/trivia_qa_test.json",
}


@pytest.fixture(scope="module")
def smoke_tree(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "smoke"
    write_world(build_world("smoke", 0), out)
    return out


@pytest.fixture
def real_tree(tmp_path) -> Path:
    for name, rel in REAL_PATHS.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / name, tmp_path / rel)
    return tmp_path


def test_counts_match_the_world_stats(smoke_tree):
    stats = json.loads((smoke_tree / "stats.json").read_text())["records"]
    tree = count_tree(smoke_tree)
    assert set(tree["dataset"]) == set(DATASETS) and (tree["status"] == "ok").all()
    assert (tree["records"] == tree["requests"]).all()  # one request per raw record in every layout
    for _, row in tree.iterrows():
        key = row["file"] + (f":{row['part']}" if isinstance(row["part"], str) else "")
        assert stats[key] == row["records"], key


def test_table3_on_the_smoke_world(smoke_tree):
    table = knowedit_table3(smoke_tree).set_index("dataset")
    assert list(table.index) == [d.label for d in KNOWEDIT_TABLE3]
    assert table.loc["Sanitation", "setting"] == "Erasure" and table.loc["Wiki_recent", "type"] == "Fact"
    sanitation = count_records(smoke_tree, "sanitation-train")
    assert table.loc["Sanitation", "train"] == next(r["requests"] for r in sanitation if r["part"] == "K_F")
    assert table.loc["ZsRE", "train_file"] == "zsre/zsre_mend_train.json"
    assert not table[["train", "test"]].isna().any().any()


def test_table3_on_a_partial_real_layout_tree(real_tree):
    table = knowedit_table3(real_tree).set_index("dataset")
    # golden counts of the fixture files: 2 recent, 1 ZsRE, 1 WikiBio, 1 CF, 3 ConvSent; Sanitation K_F 2, success 1
    assert table["test"].to_dict() == {
        "Wiki_recent": 2.0,
        "ZsRE": 1.0,
        "WikiBio": 1.0,
        "Wiki_counterfact": 1.0,
        "ConvSent": 3.0,
        "Sanitation": 1.0,
    }
    assert table.loc["Sanitation", "train"] == 2.0
    assert all(math.isnan(table.loc[d, "train"]) for d in ("Wiki_recent", "ZsRE", "WikiBio", "ConvSent"))
    rows = count_records(real_tree, "zsre-mend-train")
    assert rows == [
        {
            "dataset": "zsre-mend-train",
            "layout": "zsre-mend",
            "file": "zsre/zsre_mend_train.json",
            "part": None,
            "status": "absent",
            "records": None,
            "requests": None,
        }
    ]
    parts = {r["part"]: (r["records"], r["requests"]) for r in count_records(real_tree, "sanitation")}
    assert parts == {"success": (1, 1), "locality": (2, 2)}
    with pytest.raises(ValueError):
        count_records(real_tree, "no-such-dataset")


def test_compare_counts_golden():
    ours = pd.DataFrame({"dataset": ["A", "B"], "train": [1.0, 2.0], "test": [3.0, 4.0]})
    other = pd.DataFrame(
        {
            "dataset": ["A", "A", "B", "B"],
            "split": ["train", "test", "test", "test"],
            "count": [10, 30, 40, 41],
            "version": ["paper", "paper", "paper", "later"],
        }
    )
    out = compare_counts(ours, other).set_index("dataset")
    assert out.loc["A", "train (paper)"] == 10 and out.loc["B", "test (later)"] == 41
    assert math.isnan(out.loc["A", "test (later)"]) and math.isnan(out.loc["B", "train (paper)"])
    assert list(out.index) == ["A", "B"]
    assert list(out.columns) == ["train", "test", "train (paper)", "test (paper)", "test (later)"]
    with pytest.raises(ValueError, match="not in the table"):
        compare_counts(ours, other.assign(dataset="C"))
