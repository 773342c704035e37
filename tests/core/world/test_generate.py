"""The generated world: determinism, speed, names, functional facts, time, counterfactuals, rules."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from core.world import build_world
from core.world.templates import (
    AWARD_SUFFIXES,
    COMPANY_SUFFIXES,
    OCCUPATIONS,
    UNIVERSITY_SUFFIXES,
    WORK_NOUNS,
    reserved_words,
)


def test_same_seed_equal_world_other_seed_different(smoke) -> None:
    assert build_world("smoke", 0) == smoke
    assert build_world("smoke", 1) != smoke


def test_smoke_is_fast_and_small() -> None:
    t = time.perf_counter()
    w = build_world("smoke", 5)
    assert time.perf_counter() - t < 1.0
    assert 150 <= len(w.known_facts) <= 300


def test_default_size(default) -> None:
    assert 4000 <= len(default.known_facts) <= 5000
    assert len(default.recent_facts) >= 300
    assert len(default.relations) >= 15


def test_unknown_profile() -> None:
    with pytest.raises(ValueError, match="smoke"):
        build_world("huge")


@pytest.mark.parametrize("profile", ["smoke", "default"])
def test_names_unique_and_never_inside_another(profile, smoke, default) -> None:
    w = smoke if profile == "smoke" else default
    names = [e.name for e in w.entities] + [e.alias for e in w.entities if e.alias]
    names += [t.name for t in w.topics] + [t.subject for t in w.trivia]
    assert len(names) == len(set(names))
    joined = "\n".join(names)
    for n in names:
        assert joined.count(n) == 1, f"{n!r} occurs inside another name"


def test_people_have_multiword_names_and_aliases(smoke) -> None:
    reserved = reserved_words()
    for p in smoke.of_type("person"):
        assert len(p.name.split()) >= 2
        first, last = p.name.split()[0], p.name.split()[-1]
        assert p.alias == f"{first[0]}. {last}"
        assert first.lower() not in reserved and last.lower() not in reserved


def test_occupations_take_the_article_a() -> None:
    assert all(o[0] not in "aeiou" for o in OCCUPATIONS)


def test_relations_are_functional_and_typed(default) -> None:
    seen = Counter((f.subject, f.rid) for f in default.facts)
    assert max(seen.values()) == 1  # a recent fact never coexists with a known one of the same relation
    for f in default.facts:
        rel = default.relation(f.rid)
        assert default.entity(f.subject).etype == rel.subject_type
        assert default.entity(f.obj).etype == rel.object_type
        assert default.entity(f.counterfactual).etype == rel.object_type


def test_counterfactual_never_linked_to_subject(default) -> None:
    linked: dict[str, set[str]] = {}
    for f in default.facts:
        linked.setdefault(f.subject, set()).add(f.obj)
        linked.setdefault(f.obj, set()).add(f.subject)
    for f in default.facts:
        assert f.counterfactual != f.subject and f.counterfactual not in linked[f.subject]


def test_time(default) -> None:
    for f in default.recent_facts:
        assert f.year is not None and f.year > default.cutoff
        if default.entity(f.subject).etype == "person":
            assert default.lookup(f.subject, "P20") is None  # only the living gain recent facts
    for f in default.known_facts:
        assert f.year is None
    for p in default.of_type("person"):
        assert (p.died is not None) == (default.lookup(p.eid, "P20") is not None)
        assert p.born >= 1925 or p.died is not None


def test_spouse_symmetric_and_father_child_unique(default) -> None:
    for f in default.facts:
        if f.rid == "P26":
            back = default.lookup(f.obj, "P26", f.status)
            assert back is not None and back.obj == f.subject
    fathers = Counter(f.obj for f in default.known_facts if f.rid == "P22")
    assert max(fathers.values()) == 1


def test_asked_subset_is_about_half(default) -> None:
    rate = sum(f.asked for f in default.known_facts) / len(default.known_facts)
    assert 0.4 < rate < 0.6
    for rid in {f.rid for f in default.known_facts}:
        flags = {f.asked for f in default.known_facts if f.rid == rid}
        assert flags == {True, False}


def test_made_up_words_avoid_template_words(default) -> None:
    reserved = reserved_words()
    suffixes = {*COMPANY_SUFFIXES, *UNIVERSITY_SUFFIXES, *AWARD_SUFFIXES, *WORK_NOUNS}
    checked = 0
    for e in default.entities:
        if e.etype in ("occupation", "field", "genre"):
            continue  # real words by design
        for name in filter(None, (e.name, e.alias)):
            for w in name.split():
                if not w.endswith(".") and w not in suffixes:
                    assert w.lower() not in reserved and w[0].isupper(), (name, w)
                    checked += 1
    for t in default.topics:
        assert t.name.split()[0].lower() not in reserved
    assert checked > 1000
