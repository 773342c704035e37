"""Greedy recall: the exact-match rule (golden cases) and batched generation on a tiny trained LM."""

from __future__ import annotations

import pytest

from core.models.recall import greedy_continuations, matches_answer, probe_hits, recall_by_kind
from core.models.tiny import TINY_TEXTS
from core.types import Probe


@pytest.mark.parametrize(
    ("generated", "answer", "ok"),
    [
        (" Paris.", "Paris", True),
        (" Paris is", "Paris", True),
        ("Paris", "Paris", True),
        ("  Paris\n", " Paris ", True),
        (" Paris-Nord", "Paris", True),  # hyphen is not alphanumeric
        (" Parisian", "Paris", False),
        (" Pa", "Paris", False),
        (" paris.", "Paris", False),  # case matters
        (" Paris2", "Paris", False),
        (" Saint Paris", "Paris", False),
        (" New York City", "New York", True),
        (" Zürichsee", "Zürich", False),  # non-ASCII letters count as alphanumeric
        (" anything", "", False),
    ],
)
def test_matches_answer(generated: str, answer: str, ok: bool) -> None:
    assert matches_answer(generated, answer) is ok


def _probes() -> list[Probe]:
    return [Probe(t.rsplit(" ", 1)[0], t.rsplit(" ", 1)[1].rstrip(".")) for t in TINY_TEXTS]


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_trained_tiny_lm_recalls_its_facts(trained_tiny: dict, model_type: str) -> None:
    model, tok = trained_tiny[model_type]
    probes = _probes()
    wrong = [p.prompt for p in probes[:1]]
    result = recall_by_kind(model, tok, {"facts": probes, "wrong": [Probe(wrong[0], "Nowhere")], "empty": []},
                            batch_size=5)
    assert result == {"facts": 1.0, "wrong": 0.0}


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_batched_equals_one_by_one_in_input_order(trained_tiny: dict, model_type: str) -> None:
    model, tok = trained_tiny[model_type]
    prompts = [p.prompt for p in _probes()][::-1]
    batched = greedy_continuations(model, tok, prompts, max_new_tokens=4, batch_size=7)
    alone = [greedy_continuations(model, tok, [p], max_new_tokens=4)[0] for p in prompts[:6]]
    assert batched[:6] == alone
    hits = probe_hits(model, tok, _probes()[:3])
    assert [ok for _, ok in hits] == [True] * 3 and hits[0][0].startswith(" Lyon")
