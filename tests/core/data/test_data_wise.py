"""WISE readers on hand-written fixtures, `load_wise_loc_prompts`, and the real WISE sample files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.data import (
    load_wise_loc_prompts,
    read_wise_hallucination,
    read_wise_temporal,
    read_wise_zsre,
    read_zsre_mend,
)
from core.types import Probe

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REAL_WISE = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "wise"
REAL_HALLUCINATION = REAL_WISE / "hallucination" / "hallucination-edit.json"
REAL_TEMPORAL = REAL_WISE / "temporal" / "temporal-edit.json"


def _real(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(
            f"real WISE sample {path} is absent (it lives outside the repo, under ../shared/data/wise)"
        )
    return path


def test_hallucination_golden_fields() -> None:
    first, second = read_wise_hallucination(FIXTURES / "wise" / "hallucination-edit.json")
    assert first.case_id == "hallucination-edit/0"
    assert first.subject == "jane doe" and first.prompt.startswith(
        "This is a Wikipedia passage about jane doe."
    )
    assert first.target_new == "She was the first woman to lead the Bergen crystallography group."
    assert first.ground_truth is None and first.rephrases == () and first.extras == {}
    assert first.locality == {"neighborhood": (Probe("nq question: capital of peru", "Lima"),)}
    assert second.locality == {}  # blank locality_ground_truth: the probe is dropped, the request kept


def test_temporal_golden_fields() -> None:
    (r,) = read_wise_temporal(FIXTURES / "wise" / "temporal-edit.json", require_subject_in_prompt=True)
    assert r.case_id == "temporal-edit/0"
    assert r.rephrases == ("Quill Motors, the van company, is best known for",)
    assert r.extras["ood_rephrase"] == r.rephrases[0]
    # answers are kept verbatim (leading space included)
    assert r.locality == {
        "neighborhood": (Probe("Recipe of the week: lentil soup", " with cumin and lemon."),)
    }


def test_wise_zsre_is_the_mend_layout() -> None:
    path = FIXTURES / "zsre_mend_eval.json"
    assert read_wise_zsre(path) == read_zsre_mend(path)


def test_loc_prompts_for_both_train_layouts() -> None:
    assert load_wise_loc_prompts(FIXTURES / "zsre_mend_eval.json") == [
        "nq question: who wrote the hobbit J. R. R. Tolkien",
        "nq question: when did the first moon landing happen 1969",
    ]
    assert load_wise_loc_prompts(FIXTURES / "zsre_mend_eval.json", limit=1) == [
        "nq question: who wrote the hobbit J. R. R. Tolkien"
    ]
    assert load_wise_loc_prompts(FIXTURES / "wise" / "hallucination-edit.json") == [
        "nq question: capital of peru Lima",
        "A passage of web text that ends exactly here. ",
    ]


def test_real_hallucination_loads_fully() -> None:
    path = _real(REAL_HALLUCINATION)
    raw = json.loads(path.read_text(encoding="utf-8"))
    reqs = read_wise_hallucination(path, require_subject_in_prompt=True)
    assert len(reqs) == len(raw) == 600
    assert len({r.case_id for r in reqs}) == 600 and reqs[17].case_id == "hallucination-edit/17"
    for r, rec in zip(reqs, raw, strict=True):
        assert (r.prompt, r.subject, r.target_new) == (rec["prompt"], rec["subject"], rec["target_new"])
        assert r.rephrases == () and r.ground_truth is None
        if rec["locality_ground_truth"].strip():
            assert r.locality == {
                "neighborhood": (Probe(rec["locality_prompt"], rec["locality_ground_truth"]),)
            }
        else:
            assert r.locality == {}
    assert [i for i, r in enumerate(reqs) if not r.locality] == [86, 90, 171, 172, 238, 314, 432]


def test_real_temporal_loads_fully() -> None:
    path = _real(REAL_TEMPORAL)
    raw = json.loads(path.read_text(encoding="utf-8"))
    reqs = read_wise_temporal(path, require_subject_in_prompt=True)
    assert len(reqs) == len(raw) == 75
    for r, rec in zip(reqs, raw, strict=True):
        assert (r.prompt, r.subject, r.target_new) == (rec["prompt"], rec["subject"], rec["target_new"])
        assert r.rephrases == (rec["ood_rephrase"],) and r.extras["ood_rephrase"] == rec["ood_rephrase"]
        assert r.locality == {"neighborhood": (Probe(rec["locality_prompt"], rec["locality_ground_truth"]),)}


def test_real_files_give_loc_prompts() -> None:
    prompts = load_wise_loc_prompts(_real(REAL_TEMPORAL), limit=3)
    raw = json.loads(REAL_TEMPORAL.read_text(encoding="utf-8"))[:3]
    assert prompts == [r["locality_prompt"] + " " + r["locality_ground_truth"] for r in raw]
