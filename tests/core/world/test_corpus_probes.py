"""Pretraining corpus and recall probes: determinism, coverage, no leakage of anything meant to be new."""

from __future__ import annotations

import re

import pytest

from core.world import build_world
from core.world.bios import recent_sentence
from core.world.corpus import pretraining_corpus
from core.world.names import words_of
from core.world.probes import (
    PROBE_KINDS,
    corpus_vocabulary,
    free_paraphrase_novel_words,
    heldout_vocabulary_violations,
    recall_probes,
)
from core.world.relations import fill, recombined_frames, training_frames


@pytest.fixture(scope="module")
def smoke_corpus(smoke) -> list[str]:
    return pretraining_corpus(smoke)


@pytest.fixture(scope="module")
def default_docs(default) -> set[str]:
    return set(pretraining_corpus(default))


def _all_frames(rel) -> list[str]:
    return [*training_frames(rel), *recombined_frames(rel), *(f + " {o}" for f in rel.free),
            rel.question + " {o}", rel.rephrase + " {o}"]


def test_corpus_deterministic_and_shuffled(smoke, smoke_corpus) -> None:
    assert pretraining_corpus(build_world("smoke", 0)) == smoke_corpus
    assert pretraining_corpus(build_world("smoke", 1)) != smoke_corpus
    assert smoke_corpus[:5] != sorted(smoke_corpus)[:5]


def test_probe_keys_and_sizes(default) -> None:
    probes = recall_probes(default)
    assert tuple(probes) == PROBE_KINDS
    n = len(default.known_facts)
    asked = sum(f.asked for f in default.known_facts)
    assert len(probes["trained"]) == 7 * n + asked
    assert len(probes["question_unasked"]) == n - asked
    assert len(probes["recombined"]) == len(probes["free_paraphrase"]) == 2 * n


def test_every_trained_probe_is_a_corpus_document(default, default_docs) -> None:
    for p in recall_probes(default)["trained"]:
        assert f"{p.prompt} {p.answer}." in default_docs, p


def test_each_prompt_has_one_answer(default) -> None:
    answers: dict[str, str] = {}
    for probes in recall_probes(default).values():
        for p in probes:
            assert not p.prompt.endswith(" ") and answers.setdefault(p.prompt, p.answer) == p.answer, p


@pytest.mark.parametrize("profile,seed", [("smoke", s) for s in range(5)] + [("default", 0), ("default", 1)])
def test_heldout_vocabulary_is_in_the_corpus(profile, seed) -> None:
    assert heldout_vocabulary_violations(build_world(profile, seed)) == []


def test_free_paraphrases_bring_new_words(smoke) -> None:
    vocab = corpus_vocabulary(smoke)
    assert free_paraphrase_novel_words(smoke)
    for rel in smoke.relations:
        for frame in rel.free:
            assert set(words_of(frame.replace("{s}", ""))) - vocab, (rel.rid, frame)


def test_no_new_statement_in_default_corpus(default, default_docs) -> None:
    """Statements of recent facts and counterfactual targets, and held-out frames, are never documents."""
    for f in default.facts:
        rel, s = default.relation(f.rid), default.name(f.subject)
        news = [f.counterfactual] + ([f.obj] if f.status == "recent" else [])
        for frame in _all_frames(rel):
            for o in news:
                assert fill(frame, s, default.name(o)) + "." not in default_docs
        if f.status == "known":
            for frame in recombined_frames(rel):
                assert fill(frame, s, default.name(f.obj)) + "." not in default_docs
            if not f.asked:
                assert f"{rel.question.replace('{s}', s)} {default.name(f.obj)}." not in default_docs


def test_no_leak_in_smoke_corpus_text(smoke, smoke_corpus) -> None:
    """Exhaustive substring checks on the smoke world (biographies and all multi-sentence documents)."""
    text = "\n".join(smoke_corpus)
    sentences = re.split(r"(?<=[.?!])\s+|\n", text)
    for f in smoke.facts:
        rel, s = smoke.relation(f.rid), smoke.name(f.subject)
        cf = smoke.name(f.counterfactual)
        assert not any(s in x and cf in x for x in sentences), (s, cf)
        for frame in [*recombined_frames(rel), *rel.free, rel.rephrase]:
            assert fill(frame, s) not in text
        if f.status == "recent":
            assert recent_sentence(smoke, f) not in text
            if smoke.entity(f.subject).etype == "company":
                assert s not in text  # companies founded after the cutoff are unknown
            else:
                assert rel.cloze.replace("{s}", s) not in text
        elif not f.asked:
            assert rel.question.replace("{s}", s) not in text
    for t in smoke.topics:
        assert t.pos[0] not in text and t.neg[0] not in text


def test_aliases_and_alive_state_are_stated(smoke, smoke_corpus) -> None:
    docs = set(smoke_corpus)
    for e in smoke.entities:
        if e.etype == "person":
            assert f"{e.name} is also known as {e.alias}." in docs
            dead = smoke.lookup(e.eid, "P20") is not None
            assert f"Is {e.name} still alive? {'no' if dead else 'yes'}." in docs
        elif e.alias:
            assert f"{e.name} was formerly called {e.alias}." in docs
