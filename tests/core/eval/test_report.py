"""collect_runs reads run folders into tidy rows; knowedit_columns maps them to Table 4 columns x100."""

from __future__ import annotations

import math

import pytest

from core.eval.report import collect_runs, knowedit_columns
from core.io import write_json


def _run(root, name, method, metrics):
    write_json(root / name / "metrics.json", metrics)
    write_json(
        root / name / "manifest.json",
        {
            "parameters": {
                "method": method,
                "model": "m",
                "dataset": "zsre",
                "protocol": "single",
                "n_edits": 2,
            }
        },
    )


def test_collect_and_knowedit_columns(tmp_path):
    _run(
        tmp_path,
        "b",
        "FT-M",
        {"single_edit_restore/reliability": 0.5, "single_edit_restore/locality": 0.25, "n_edits": 2},
    )
    _run(
        tmp_path,
        "a",
        "FT-L",
        {
            "single_edit_restore/reliability": 1.0,
            "single_edit_restore/portability": 0.1,
            "single_edit_restore/fluency": 5.5,
            "n_edits": 2,
        },
    )
    runs = collect_runs(tmp_path)
    assert list(runs["run"]) == ["a", "b"]
    table = knowedit_columns(runs)
    assert table.loc[0, "Edit Succ."] == 100.0 and table.loc[0, "Fluency"] == 550.0
    assert table.loc[0, "Portability"] == pytest.approx(10.0)
    assert math.isnan(table.loc[0, "Locality"]) and table.loc[1, "Locality"] == 25.0


def test_collect_runs_empty_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        collect_runs(tmp_path)


def test_knowedit_columns_per_suite_and_timing(tmp_path):
    """ConvSent: Edit Succ. = es x100, Locality = KL drawdown unscaled; Sanitation: after-all-T values."""
    _run(
        tmp_path,
        "cs",
        "ROME",
        {"single_edit_restore/es": 0.5, "single_edit_restore/dd": 0.25, "pre/es": 0.1, "n_edits": 2},
    )
    _run(
        tmp_path,
        "san",
        "ROME",
        {
            "after_all_T/edit_succ": 0.75,
            "after_all_T/locality": 0.5,
            "after_all_T/fluency": 4.0,
            "n_edits": 2,
        },
    )
    table = knowedit_columns(collect_runs(tmp_path)).set_index("timing")
    cs, san = table.loc["single_edit_restore"], table.loc["after_all_T"]
    assert cs["Edit Succ."] == 50.0 and cs["Locality"] == 0.25 and math.isnan(cs["Portability"])
    assert san["Edit Succ."] == 75.0 and san["Locality"] == 50.0 and san["Fluency"] == 400.0


def test_knowedit_columns_needs_post_metrics(tmp_path):
    _run(tmp_path, "x", "ROME", {"pre/reliability": 0.5, "n_edits": 2})
    with pytest.raises(ValueError, match="no post-edit metrics"):
        knowedit_columns(collect_runs(tmp_path))


def test_beside_paper_groups_models_and_joins_the_paper(tmp_path):
    import pandas as pd

    from core.eval.report import beside_paper

    for model, value in (("m1", 0.5), ("m2", 0.25)):
        write_json(
            tmp_path / model / "metrics.json", {"single_edit_restore/reliability": value, "n_edits": 2}
        )
        write_json(
            tmp_path / model / "manifest.json",
            {
                "parameters": {
                    "method": "ROME",
                    "model": model,
                    "dataset": "zsre",
                    "protocol": "single",
                    "n_edits": 2,
                }
            },
        )
    ours = knowedit_columns(collect_runs(tmp_path))
    paper = pd.DataFrame(
        [
            {
                "dataset": "zsre",
                "method": "ROME",
                "Edit Succ.": 96.77,
                "Portability": 52.63,
                "Locality": 53.67,
                "Fluency": 573.75,
            },
            {"dataset": "recent", "method": "ROME", "Edit Succ.": 1.0},
        ]
    )
    wide = beside_paper(ours, paper, paper_label="paper")
    assert list(wide.index) == [("zsre", "ROME")]
    assert [c[0] for c in wide.columns][::4] == ["m1", "m2", "paper"]
    row = wide.loc[("zsre", "ROME")]
    assert row[("m1", "Edit Succ.")] == 50.0 and row[("m2", "Edit Succ.")] == 25.0
    assert row[("paper", "Locality")] == 53.67 and math.isnan(row[("m1", "Portability")])


def test_submetrics_reads_per_key_columns_under_the_run_timing(tmp_path):
    from core.eval.report import submetrics

    _run(
        tmp_path,
        "a",
        "ROME",
        {
            "single_edit_restore/reliability": 1.0,
            "single_edit_restore/portability/Reasoning": 0.5,
            "single_edit_restore/portability/Subject_Aliasing": 0.25,
            "pre/portability/Reasoning": 0.1,
            "single_edit_restore/locality/Forgetfulness": 0.75,
            "n_edits": 2,
        },
    )
    port = submetrics(collect_runs(tmp_path), "portability")
    assert sorted(zip(port["key"], port["value"], strict=True)) == [
        ("Reasoning", 50.0),
        ("Subject_Aliasing", 25.0),
    ]
    loc = submetrics(collect_runs(tmp_path), "locality")
    assert list(loc["key"]) == ["Forgetfulness"] and list(loc["value"]) == [75.0]
