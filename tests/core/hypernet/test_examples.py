"""MEND training triples from requests: the dataset's own locality probe, or a same-subject partner."""

from __future__ import annotations

import dataclasses

import pytest

from core.hypernet.examples import as_examples, meta_example, with_same_subject_locality
from core.types import EditRequest, Probe
from tests.core.hypernet.conftest import requests


def _req(i: int, subject: str, prompt: str, truth: str | None = "x") -> EditRequest:
    return EditRequest(case_id=f"c/{i}", prompt=prompt, subject=subject, target_new=f"t{i}", ground_truth=truth,
                       locality={"NQ": (Probe(f"nq question: q{i}", f"a{i}"),)})  # fmt: skip


def test_meta_example_from_request():
    r = requests(0, 1)[0]
    e = meta_example(r)
    assert (e.prompt, e.target, e.equiv_prompt) == (r.prompt, r.target_new, r.rephrases[0])
    assert (e.loc_prompt, e.loc_answer) == ("Greta Holm works as a", "painter")
    assert meta_example(dataclasses.replace(r, rephrases=())).equiv_prompt == r.prompt
    bare = EditRequest(case_id="x/1", prompt="p", subject="s", target_new="t")
    with pytest.raises(ValueError, match="x/1: no locality probe"):
        meta_example(bare)
    assert as_examples([e, r]) == [e, e]


def test_same_subject_partner_is_the_next_other_prompt_cyclically():
    reqs = [
        _req(0, "Ann", "Where was Ann born?", "Oslo"),
        _req(1, "Bob", "Where was Bob born?", "Rome"),
        _req(2, "Ann", "Who employed Ann?", "Acme"),
        _req(3, "Ann", "Where was Ann born?", "Oslo"),  # same prompt as 0: never its partner
        _req(4, "Cid", "Where was Cid born?", "Lima"),
        _req(5, "Cid", "Who employed Cid?", None),  # no ground truth: not a partner
    ]
    out = with_same_subject_locality(reqs)
    first = [next(iter(r.locality.items())) for r in out]
    assert first[0] == ("Same_Subject", (Probe("Who employed Ann?", "Acme"),))
    assert first[2] == ("Same_Subject", (Probe("Where was Ann born?", "Oslo"),))  # 3 then cycles to 0
    assert first[3] == ("Same_Subject", (Probe("Who employed Ann?", "Acme"),))
    assert first[1][0] == "NQ" and first[4][0] == "NQ"  # no usable partner: the dataset's own probe
    assert first[5] == ("Same_Subject", (Probe("Where was Cid born?", "Lima"),))
    assert out[0].locality["NQ"] == reqs[0].locality["NQ"]  # kept after the new probe
    ex = as_examples(reqs, "same_subject")
    assert [e.loc_prompt for e in ex] == ["Who employed Ann?", "nq question: q1", "Where was Ann born?",
                                          "Who employed Ann?", "nq question: q4", "Where was Cid born?"]  # fmt: skip
    assert [e.loc_prompt for e in as_examples(reqs)] == [f"nq question: q{i}" for i in range(6)]
    with pytest.raises(ValueError, match="loc_source"):
        as_examples(reqs, "nq")  # type: ignore[arg-type]
