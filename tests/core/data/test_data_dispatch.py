"""The `READERS` table: each layout reads its fixture through `read_requests`; unknown names fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data import READERS, read_requests
from core.types import EditRequest

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# layout -> (fixture, number of requests)
LAYOUT_FIXTURES = {
    "knowedit-recent": ("knowedit/recent_test.json", 2),
    "knowedit-zsre": ("knowedit/ZsRE-test-all.json", 1),
    "knowedit-wikibio": ("knowedit/wikibio-test-all.json", 1),
    "knowedit-counterfact": ("knowedit/test_cf.json", 1),
    "knowedit-convsent": ("knowedit/blender_test.json", 3),
    "knowedit-sanitation": ("knowedit/trivia_qa_test.json", 3),
    "zsre-mend": ("zsre_mend_eval.json", 2),
    "counterfact-rome": ("counterfact.json", 2),
    "counterfact-easyedit": ("counterfact-edit.json", 1),
    "wise-zsre": ("zsre_mend_eval.json", 2),
    "wise-hallucination": ("wise/hallucination-edit.json", 2),
    "wise-temporal": ("wise/temporal-edit.json", 1),
}


def test_table_covers_every_layout() -> None:
    assert set(READERS) == set(LAYOUT_FIXTURES)


@pytest.mark.parametrize("layout", sorted(LAYOUT_FIXTURES))
def test_every_layout_reads_its_fixture(layout: str) -> None:
    fixture, count = LAYOUT_FIXTURES[layout]
    reqs = read_requests(layout, FIXTURES / fixture)
    assert len(reqs) == count and all(isinstance(r, EditRequest) for r in reqs)
    assert len({r.case_id for r in reqs}) == count
    assert all(r.case_id.startswith(Path(fixture).stem + "/") for r in reqs)
    assert all(r.prompt.strip() and r.target_new.strip() for r in reqs)
    # reading twice gives equal requests (no hidden state)
    assert read_requests(layout, FIXTURES / fixture) == reqs


@pytest.mark.parametrize("layout", sorted(LAYOUT_FIXTURES))
def test_every_layout_accepts_subject_check(layout: str) -> None:
    fixture, _ = LAYOUT_FIXTURES[layout]
    kw = {}
    if layout == "knowedit-sanitation":  # only K_F records carry a subject
        fixture, kw = "knowedit/trivia_qa_train.json", {"parts": ("K_F",)}
    reqs = read_requests(layout, FIXTURES / fixture, require_subject_in_prompt=True, **kw)
    assert all(r.subject and r.subject in r.prompt for r in reqs)


def test_unknown_layout_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown data layout 'zsre'.*knowedit-recent"):
        read_requests("zsre", FIXTURES / "zsre_mend_eval.json")
