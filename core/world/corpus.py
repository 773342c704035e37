"""The pretraining corpus of the synthetic world: what a world LM may know before any edit.

Documents (short texts; an LM trains on each with whole-sequence loss), shuffled with the world seed:

* every known fact under each of its relation's seven training frames ("Maren Tolvik was born in X.");
* the relation's question form with its answer, for the asked subset only ("Where was M T born? X.");
* alias statements (persons: "N is also known as A." / "A is another name for N."; cities: former names);
* "Is N still alive? yes/no." for every person (the state at the cutoff);
* a biography per person (known facts only), opinions on every topic in its prior sentiment,
  every trivia question as "Question:{q}\\nAnswer: {a}", every NQ-like item as "{q} {a}", filler passages.

Excluded by construction: recent facts, counterfactual targets, recombined and free frames, rephrase
questions, question forms for unasked subjects, and the first answer of each topic's pos/neg lists.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from core.world.bios import biography
from core.world.relations import fill, training_frames
from core.world.schema import World
from core.world.templates import OPINION_QUESTION, TRIVIA_TEMPLATE

OPINIONS_PER_TOPIC = 3


def fact_documents(world: World) -> Iterator[str]:
    """Every known fact under every training frame, then asked questions with their answers."""
    for f in world.known_facts:
        rel, s, o = world.relation(f.rid), world.name(f.subject), world.name(f.obj)
        for frame in training_frames(rel):
            yield fill(frame, s, o) + "."
        if f.asked:
            yield f"{rel.question.replace('{s}', s)} {o}."


def alias_documents(world: World) -> Iterator[str]:
    """Alias and former-name statements."""
    for e in world.entities:
        if e.alias is None:
            continue
        if e.etype == "person":
            yield f"{e.name} is also known as {e.alias}."
            yield f"{e.alias} is another name for {e.name}."
        else:
            yield f"{e.name} was formerly called {e.alias}."
            yield f"{e.alias} is the former name of {e.name}."


def alive_question(name: str) -> str:
    """'Is N still alive?' (the Logical_Generalization prompt)."""
    return f"Is {name} still alive?"


def person_documents(world: World) -> Iterator[str]:
    """Alive/dead state at the cutoff and a biography, per person."""
    for p in world.of_type("person"):
        dead = world.lookup(p.eid, "P20") is not None
        yield f"{alive_question(p.name)} {'no' if dead else 'yes'}."
        yield " ".join(biography(world, p.eid))


def opinion_documents(world: World) -> Iterator[str]:
    """Answers 1..OPINIONS_PER_TOPIC of each topic's prior sentiment (answer 0 is kept for edits)."""
    for t in world.topics:
        answers = t.pos if t.prior == "pos" else t.neg
        for a in answers[1:1 + OPINIONS_PER_TOPIC]:
            yield f"{OPINION_QUESTION.replace('{t}', t.name)} {a}"


def other_documents(world: World) -> Iterator[str]:
    """Trivia, NQ-like questions and filler."""
    for t in world.trivia:
        yield TRIVIA_TEMPLATE.format(q=t.question, a=t.answer)
    for item in world.nq:
        yield f"{item.question} {item.answer}"
    yield from world.filler


def pretraining_corpus(world: World) -> list[str]:
    """All corpus documents, deterministically shuffled by the world seed."""
    docs = [*fact_documents(world), *alias_documents(world), *person_documents(world),
            *opinion_documents(world), *other_documents(world)]
    random.Random(world.seed).shuffle(docs)
    return docs
