"""Error analysis (KnowEdit Fig. 5): the tidy per-edit table on a tiny model, target pieces, the lexicon,
and the per-method shares."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from core.config import load_hparams
from core.editors.ft import FTHyperParams
from core.eval.error_analysis import (
    COLUMNS,
    analyse_errors,
    load_lexicon,
    summarize_error_types,
    target_pieces,
    top_error_types,
)
from core.metrics.error_types import CORRECT, ERROR_TYPES, IRRELEVANT, MISSING, PARTIAL
from core.models.tiny import build_tiny_model
from core.types import EditRequest

FT_M = Path(__file__).parents[1] / "editors" / "hparams" / "FT-M" / "tiny-gpt2.yaml"
FACTS = (
    ("Alice Brown was born in", "Riga", "Lyon"),
    ("Boris Kell works as a", "Porto", "judge"),
    ("The city where Clara Voss lives is", "Oslo", None),
)
REQS = [
    EditRequest(case_id=f"c{i}", prompt=p, subject="x", target_new=t, ground_truth=g)
    for i, (p, t, g) in enumerate(FACTS)
]


def test_target_pieces_rebuild_the_answer():
    _, tok = build_tiny_model("gpt2", seed=0)
    pieces = target_pieces(tok, "Alice Brown was born in", "Riga Porto")
    assert "".join(pieces) == " Riga Porto" and len(pieces) >= 2


def test_analyse_errors_table_and_restore():
    torch.set_num_threads(1)
    model, tok = build_tiny_model("gpt2", seed=0)
    state = {n: p.detach().clone() for n, p in model.named_parameters()}
    hp = load_hparams(FT_M, FTHyperParams)
    table = analyse_errors(model, tok, REQS, {"FT-M": hp}, extra_tokens=2)
    assert list(table.columns) == list(COLUMNS)
    assert list(table["case_id"]) == ["c0", "c1", "c2"] and set(table["method"]) == {"FT-M"}
    assert list(table["error_type"]) == [CORRECT] * 3  # FT-M makes the tiny model say each target
    assert table["generation"].str.strip().str.startswith(tuple(t for _, t, _ in FACTS)).all()
    assert not table["kept_ground_truth"].any()
    assert all(torch.equal(p, state[n]) for n, p in model.named_parameters())
    pre = analyse_errors(model, tok, REQS[:1], {}, extra_tokens=2)
    assert pre.empty and list(pre.columns) == list(COLUMNS)


def test_unknown_method_fails():
    model, tok = build_tiny_model("gpt2", seed=0)
    with pytest.raises(LookupError, match="FT-X"):
        analyse_errors(model, tok, REQS[:1], {"FT-X": None})


def test_summarize_golden():
    table = pd.DataFrame(
        {
            "method": ["A", "A", "A", "A", "B", "B"],
            "error_type": [CORRECT, MISSING, PARTIAL, PARTIAL, CORRECT, CORRECT],
        }
    )
    out = summarize_error_types(table)
    assert list(out["method"].unique()) == ["A", "B"] and len(out) == 2 * len(ERROR_TYPES)
    a = out[out["method"] == "A"].set_index("error_type")
    assert a.loc[PARTIAL, "share"] == pytest.approx(2 / 3) and a.loc[MISSING, "count"] == 1
    assert a.loc[IRRELEVANT, "share"] == 0.0 and set(a["n_failed"]) == {3} and set(a["n_cases"]) == {4}
    assert (out[out["method"] == "B"]["share"] == 0).all()
    top = top_error_types(out).set_index("method")
    assert top.loc["A", "top_type"] == PARTIAL and top.loc["A", "share"] == pytest.approx(2 / 3)
    assert pd.isna(top.loc["B", "top_type"]) and top.loc["B", "n_failed"] == 0
    assert top.loc["all", "top_type"] == PARTIAL and top.loc["all", "n_failed"] == 3


def test_load_lexicon(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["Zerbo is a land.", "Lalei_2 rules"]))
    assert load_lexicon(path) == {"zerbo", "is", "a", "land", "lalei", "2", "rules"}
