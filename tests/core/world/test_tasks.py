"""General-ability tasks of the world (KnowEdit Table 5 analogue): determinism, exclusion of edited
entities, held-out documents that are never corpus documents, and each task's construction rule."""

from __future__ import annotations

import pytest

from core.world import build_world
from core.world.corpus import pretraining_corpus
from core.world.probes import recall_probes
from core.world.tasks import (
    TRIVIA_PROMPT,
    TaskSizes,
    entity_ids,
    general_tasks,
    heldout_documents,
    world_choice,
    world_qa,
    world_sentiment,
    world_trivia,
)
from core.world.templates import TRIVIA_TEMPLATE


@pytest.fixture(scope="module")
def smoke_docs(smoke) -> set[str]:
    return set(pretraining_corpus(smoke))


def test_same_seed_same_tasks_other_seed_other_tasks(smoke) -> None:
    a = general_tasks(smoke, TaskSizes(qa=20, multihop=20, documents=10), seed=3)
    assert a == general_tasks(build_world("smoke", 0), TaskSizes(qa=20, multihop=20, documents=10), seed=3)
    assert a != general_tasks(smoke, TaskSizes(qa=20, multihop=20, documents=10), seed=4)


def test_sizes_cap_each_task(smoke) -> None:
    t = general_tasks(
        smoke, TaskSizes(qa=7, choice_per_group=2, multihop=5, trivia=3, sentiment=4, documents=6)
    )
    counts = t.counts()
    assert (counts["qa"], counts["multihop"], counts["trivia"], counts["sentiment"], counts["documents"]) == (
        7, 5, 3, 4, 6,
    )  # fmt: skip
    per_group = {}
    for c in t.choice:
        per_group[c.group] = per_group.get(c.group, 0) + 1
    assert max(per_group.values()) == 2 and len(per_group) == len({f.rid for f in smoke.known_facts})


def test_exclusion_drops_every_item_touching_the_named_entities(smoke) -> None:
    person = next(p for p in smoke.of_type("person") if len(smoke.facts_about(p.eid, "known")) >= 3)
    city = smoke.of_type("city")[0]
    sizes = TaskSizes(qa=10**4, choice_per_group=10**4, multihop=10**4, trivia=10**4, documents=50)
    full = general_tasks(smoke, sizes)
    cut = general_tasks(smoke, sizes, exclude_names=[person.name, city.name])
    drop = {person.eid, city.eid}
    for task in ("qa", "choice", "multihop", "trivia", "documents"):
        assert not any(x.entities & drop for x in getattr(cut, task)), task
    assert len(cut.qa) < len(full.qa) and len(cut.choice) < len(full.choice)
    assert len(cut.documents) == 50  # documents are drawn again until enough avoid the entities
    assert cut.sentiment == full.sentiment  # opinions involve no entity


def test_aliases_resolve_and_unknown_names_raise(smoke) -> None:
    person = next(p for p in smoke.of_type("person") if p.alias)
    assert entity_ids(smoke, [person.alias]) == {person.eid}
    with pytest.raises(KeyError, match="Nobody Atall"):
        entity_ids(smoke, [person.name, "Nobody Atall"])


def test_qa_is_the_never_asked_question_form(smoke) -> None:
    probes = recall_probes(smoke)["question_unasked"]
    assert [(q.prompt, q.answer) for q in world_qa(smoke)] == [(p.prompt, p.answer) for p in probes]


def test_choice_options_share_the_object_type_and_gold_is_the_true_object(smoke) -> None:
    import random

    items = world_choice(smoke, random.Random(0), 4)
    facts = smoke.known_facts
    assert len(items) == len(facts)
    for item, f in zip(items, facts, strict=True):
        etype = smoke.entity(f.obj).etype
        assert item.options[item.gold] == smoke.name(f.obj)
        assert len(set(item.options)) == len(item.options) == min(4, len(smoke.of_type(etype)))
        names = {e.name for e in smoke.of_type(etype)}
        assert set(item.options) <= names and not item.prompt.endswith(" ")


def test_trivia_items_are_corpus_documents_and_sentiment_answers_are_held_out(smoke, smoke_docs) -> None:
    trivia = world_trivia(smoke)
    assert trivia and all(t.prompt.startswith("Question:") for t in trivia)
    assert all(f"{t.prompt} {t.answer}" in smoke_docs for t in trivia)
    assert TRIVIA_PROMPT + " {a}" == TRIVIA_TEMPLATE
    for s, topic in zip(world_sentiment(smoke), smoke.topics, strict=True):
        assert all(f"{s.prompt} {o}" not in smoke_docs for o in s.options)
        assert s.options[s.gold] == (topic.pos if topic.prior == "pos" else topic.neg)[0]


def test_heldout_documents_are_never_corpus_documents(smoke, smoke_docs, default) -> None:
    docs = heldout_documents(smoke, 100, seed=1)
    assert len(docs) == 100 and not any(d.text in smoke_docs for d in docs)
    assert not any(any(s + "." in smoke_docs for s in d.text.split(". ")) for d in docs)
    assert heldout_documents(smoke, 100, seed=1) == docs != heldout_documents(smoke, 100, seed=2)
    big = {d.text for d in heldout_documents(default, 300)}
    assert not big & set(pretraining_corpus(default))


def test_task_sizes_are_validated() -> None:
    with pytest.raises(ValueError, match="options"):
        TaskSizes(options=1)
    with pytest.raises(ValueError, match="qa"):
        TaskSizes(qa=0)
