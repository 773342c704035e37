"""The relation table: frame shapes, unambiguous cue words, held-out frames."""

from __future__ import annotations

import re

import pytest

from core.world.relations import LEAD_INS, RELATIONS, fill, recombined_frames, relation, training_frames

WORD = re.compile(r"[A-Za-z]+")


def _words(frame: str) -> set[str]:
    return {w.lower() for w in WORD.findall(frame.replace("{s}", "").replace("{o}", ""))}


def test_at_least_fifteen_relations_with_unique_ids() -> None:
    assert len(RELATIONS) >= 15
    assert len({r.rid for r in RELATIONS}) == len(RELATIONS)
    assert relation("P19").label == "place of birth"
    with pytest.raises(KeyError):
        relation("P0")


@pytest.mark.parametrize("rel", RELATIONS, ids=lambda r: r.rid)
def test_frames_have_the_right_shape(rel) -> None:
    frames = training_frames(rel)
    assert len(frames) == 7 and len(set(frames)) == 7
    assert frames[0] == rel.cloze + " {o}"
    for f in (*frames, *recombined_frames(rel)):
        assert f.count("{s}") == 1 and f.endswith("{o}"), f
    for core in rel.cores:
        assert core.startswith(("{s} ", "The ")), core  # so a lead-in can precede it
    assert rel.question.endswith("?") and "{s}" in rel.question
    assert len(recombined_frames(rel)) >= 2 and len(rel.free) >= 2
    assert not set(recombined_frames(rel)) & set(frames)


@pytest.mark.parametrize("rel", RELATIONS, ids=lambda r: r.rid)
def test_cue_words_are_present_and_exclusive(rel) -> None:
    others = {w for r in RELATIONS if r is not rel for w in r.cue}
    for frame in (*training_frames(rel), rel.question, *recombined_frames(rel)):
        words = _words(frame)
        assert not words & others, f"{rel.rid}: foreign cue {words & others} in {frame!r}"
        if rel.cloze.split(" ", 1)[1] not in frame:  # the KnowEdit cloze keeps its label
            assert words & set(rel.cue), f"{rel.rid}: no cue word in {frame!r}"


def test_clozes_are_distinct_prefixes() -> None:
    prefixes = [r.cloze.split("{s}")[0] for r in RELATIONS]
    assert len(set(prefixes)) == len(prefixes)


def test_recombined_lead_ins_are_used_in_training_by_other_relations_only() -> None:
    for rel in RELATIONS:
        own = {lead for lead in LEAD_INS if any(f.startswith(lead) for f in training_frames(rel))}
        for frame in recombined_frames(rel):
            lead = next(lead for lead in LEAD_INS if frame.startswith(lead))
            assert lead not in own
            assert any(f.startswith(lead) for r in RELATIONS for f in training_frames(r))


def test_fill_cuts_before_the_object() -> None:
    frame = "{s} was born in {o}"
    assert fill(frame, "Ann Roe") == "Ann Roe was born in"
    assert fill(frame, "Ann Roe", "Oslo") == "Ann Roe was born in Oslo"
    assert fill("According to the archive, the place of birth of {s} is {o}", "A") == (
        "According to the archive, the place of birth of A is")
