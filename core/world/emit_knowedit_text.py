"""KnowEdit text datasets: WikiBio, ConvSent and Sanitation, in the real layouts (easyedit-notes 3.1).

* WikiBio/wikibio-{train,test}-all.json: {"text": "This is a Wikipedia passage about <concept>. <bio>",
  "labels": <next sentence>, "concept": <lower-cased name>, "locality": {"Relation_Specificity":
  [{"prompt": "The field of work of <concept> is", "ground_truth": [field]}, {"prompt": "<concept> field of
  work", ...}]}}. The label states a recent fact (true in the world, absent from the corpus), which is
  what the model would hallucinate.
* convsent/blender_{train,val,test}.json: [{"ent", "pos": [...], "neg": [...]}].
* Sanitation/trivia_qa_train.json: {"K_F": [{question, ground_truth, target_new: "I don't know.", subject}],
  "K_R": [{question, ground_truth, target_new}]}; trivia_qa_test.json: {"success": [...], "locality": [...]}.
  Retain and locality items keep their own answer as `target_new`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.world.bios import bio_header, biography, concept, recent_sentence
from core.world.emit_common import shuffled, take_splits, write
from core.world.schema import World

IDK = "I don't know."
BIO_PREFIX_SENTENCES = 3


BioCase = tuple[str, tuple[str, ...], tuple[str, ...], str]


def bio_cases(world: World) -> list[BioCase]:
    """(person id, first biography sentences, earlier recent sentences, label) per recent person fact.

    A person with k recent facts gives k cases whose passages grow by the earlier recent sentences, so no
    two cases share a passage with different labels.
    """
    out = []
    for p in world.of_type("person"):
        recents = world.facts_about(p.eid, "recent")
        if not recents:
            continue
        bio = biography(world, p.eid)[:BIO_PREFIX_SENTENCES]
        done: list[str] = []
        for f in recents:
            sentence = recent_sentence(world, f)
            out.append((p.eid, bio, tuple(done), sentence))
            done.append(sentence)
    return out


def wikibio_record(world: World, eid: str, bio: tuple[str, ...], earlier: tuple[str, ...], label: str) -> dict[str, Any]:
    """One KnowEdit WikiBio record."""
    person = world.entity(eid)
    c = concept(person)
    field = world.value(eid, "P101")
    loc = [] if field is None else [
        {"prompt": f"The field of work of {c} is", "ground_truth": [world.name(field)]},
        {"prompt": f"{c} field of work", "ground_truth": [world.name(field)]}]
    return {"text": " ".join((bio_header(person), *bio, *earlier)), "labels": label, "concept": c,
            "locality": {"Relation_Specificity": loc}}


def trivia_item(question: str, answer: str, target: str, subject: str | None = None) -> dict[str, str]:
    """A Sanitation item; `subject` only for K_F."""
    item = {"question": question, "ground_truth": answer, "target_new": target}
    return item if subject is None else {**item, "subject": subject}


def emit_knowedit_text(world: World, out: Path, wikibio: tuple[int, int], counts: dict[str, int]) -> None:
    """Write WikiBio, ConvSent and Sanitation."""
    cases = shuffled(world, "wikibio", bio_cases(world))
    for name, part in zip(("train", "test"), take_splits(cases, wikibio), strict=True):
        write(out, f"WikiBio/wikibio-{name}-all.json", [wikibio_record(world, *c) for c in part], counts)
    for split in ("train", "val", "test"):
        rows = [{"ent": t.name, "pos": list(t.pos), "neg": list(t.neg)} for t in world.topics if t.split == split]
        write(out, f"convsent/blender_{split}.json", rows, counts)
    tv = world.trivia
    train = {"K_F": [trivia_item(t.question, t.answer, IDK, t.subject)
                     for t in tv if t.split == "train" and t.group != "retain"],
             "K_R": [trivia_item(t.question, t.answer, t.answer) for t in tv if t.split == "train" and t.group == "retain"]}
    test = {"success": [trivia_item(t.question, t.answer, IDK) for t in tv if t.split == "test" and t.group != "retain"],
            "locality": [trivia_item(t.question, t.answer, t.answer)
                         for t in tv if t.split == "test" and t.group == "retain"]}
    write(out, "Sanitation/trivia_qa_train.json", train, counts)
    write(out, "Sanitation/trivia_qa_test.json", test, counts)
