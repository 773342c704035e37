"""Golden-field tests for the MEND zsRE reader and the two CounterFact readers on hand-written fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.data import DataError, read_counterfact_easyedit, read_counterfact_rome, read_zsre_mend
from core.types import Probe

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_zsre_mend_golden_fields() -> None:
    first, second = read_zsre_mend(FIXTURES / "zsre_mend_eval.json", require_subject_in_prompt=True)
    assert first.case_id == "zsre_mend_eval/0"
    assert first.prompt == "What university did Ann Roe attend?"
    assert (first.subject, first.target_new, first.ground_truth) == ("Ann Roe", "University of Oslo", "MIT")
    assert first.rephrases == ("Which university was Ann Roe a student of?",)
    assert first.locality == {"NQ": (Probe("nq question: who wrote the hobbit", "J. R. R. Tolkien"),)}
    assert first.portability == {}
    assert first.extras["cond"] == "MIT >> University of Oslo || What university did Ann Roe attend?"
    assert first.extras["pred"] == "Harvard University"
    assert first.extras["aliases"]["ground_truth"] == ("MIT", "Massachusetts Institute of Technology")
    assert second.portability == {
        "one_hop": (Probe("Which countries border the sea Quill River flows into?", "Sweden"),)
    }


def _with_empty_alt(tmp_path: Path) -> Path:
    records = json.loads((FIXTURES / "zsre_mend_eval.json").read_text())
    records[0]["alt"] = ""
    path = tmp_path / "zsre_mend_edit.json"
    path.write_text(json.dumps(records))
    return path


def test_zsre_mend_empty_alt_raises_by_default(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"zsre_mend_edit.json: record 0: field 'alt': empty string.*skip_empty_alt"
    ):
        read_zsre_mend(_with_empty_alt(tmp_path))


def test_zsre_mend_skip_empty_alt_keeps_file_indices(tmp_path: Path) -> None:
    (only,) = read_zsre_mend(_with_empty_alt(tmp_path), skip_empty_alt=True)
    assert only.case_id == "zsre_mend_edit/1"


def test_zsre_mend_blank_loc_ans_drops_probe(tmp_path: Path) -> None:
    records = json.loads((FIXTURES / "zsre_mend_eval.json").read_text())
    records[0]["loc_ans"] = "  "
    del records[0]["answers"]
    path = tmp_path / "z.json"
    path.write_text(json.dumps(records))
    r = read_zsre_mend(path)[0]
    assert r.locality == {} and r.ground_truth is None
    assert r.extras["cond"].startswith("MIT >> ")  # the file's own cond, used without answers


def test_counterfact_rome_golden_fields() -> None:
    first, second = read_counterfact_rome(FIXTURES / "counterfact.json", require_subject_in_prompt=True)
    assert first.case_id == "counterfact/0"
    assert first.prompt == "The mother tongue of Danielle Darrieux is"
    assert (first.subject, first.target_new, first.ground_truth) == ("Danielle Darrieux", "English", "French")
    assert first.rephrases == (
        "Shayna does this and Danielle Darrieux is",
        "An album was released. Danielle Darrieux spoke the language",
    )
    assert first.locality == {
        "Neighborhood": (
            Probe("The mother tongue of Léon Blum is", "French"),
            Probe("The native language of Montesquieu is", "French"),
        )
    }
    ex = first.extras
    assert ex["prompt_template"] == "The mother tongue of {} is"
    assert (ex["relation_id"], ex["pararel_idx"], ex["source_case_id"]) == ("P103", 2796, 7)
    assert (ex["target_new_id"], ex["target_true_id"]) == ("Q1860", "Q150")
    assert ex["attribute_prompts"] == ("J. R. R. Tolkien is a native speaker of",)
    assert len(ex["generation_prompts"]) == 2
    assert second.prompt == "Ola Berg is a professional" and second.extras["generation_prompts"] == ()


def test_counterfact_easyedit_golden_fields() -> None:
    (r,) = read_counterfact_easyedit(FIXTURES / "counterfact-edit.json", require_subject_in_prompt=True)
    assert r.case_id == "counterfact-edit/0"
    assert (r.prompt, r.target_new, r.ground_truth) == (
        "The mother tongue of Danielle Darrieux is",
        "English",
        "French",
    )
    assert r.rephrases == ("Danielle Darrieux spoke the language",)
    assert r.locality == {"Neighborhood": (Probe("The mother tongue of Léon Blum is", "French"),)}
