"""Short biographies composed from a person's facts (corpus documents, WikiBio and WISE hallucination).

A biography states only known facts, through the relation's first core frame that starts with the
subject, with a pronoun after the first sentence. `recent_sentence` states a recent fact the same way,
dated ("In 2023, she died in X."), and is never part of the corpus.
"""

from __future__ import annotations

from core.world.relations import Relation, fill
from core.world.schema import Entity, Fact, World
from core.world.templates import BIO_HEADER

BIO_ORDER = ("P19", "P27", "P103", "P101", "P69", "P108", "P26", "P22", "P166", "P20")


def subject_frame(rel: Relation) -> str:
    """The first core frame of `rel` that begins with the subject ("{s} was born in {o}")."""
    return next(c for c in rel.cores if c.startswith("{s} "))


def pronoun(person: Entity) -> str:
    """'She' or 'He'."""
    return "She" if person.gender == "f" else "He"


def _lifespan(person: Entity) -> str:
    return f"({person.born}\u2013{person.died})" if person.died else f"(born {person.born})"


def biography(world: World, eid: str) -> tuple[str, ...]:
    """The biography sentences of person `eid` from known facts, first sentence naming the person."""
    p = world.entity(eid)
    occupation = world.lookup(eid, "P106")
    if occupation is None:
        raise ValueError(f"{eid} has no occupation; biographies are for persons")
    first = fill(subject_frame(world.relation("P106")), f"{p.name} {_lifespan(p)}", world.name(occupation.obj))
    out = [first + "."]
    for rid in BIO_ORDER:
        f = world.lookup(eid, rid)
        if f is not None:
            out.append(fill(subject_frame(world.relation(rid)), pronoun(p), world.name(f.obj)) + ".")
    return tuple(out)


def recent_sentence(world: World, fact: Fact) -> str:
    """A dated sentence stating a recent person fact, e.g. 'In 2023, she died in Velmora.'"""
    p = world.entity(fact.subject)
    body = fill(subject_frame(world.relation(fact.rid)), pronoun(p).lower(), world.name(fact.obj))
    return f"In {fact.year}, {body}."


def concept(person: Entity) -> str:
    """The WikiBio `concept`: the lower-cased name."""
    return person.name.lower()


def bio_header(person: Entity) -> str:
    """'This is a Wikipedia passage about <lower-cased name>.'"""
    return BIO_HEADER.format(c=concept(person))
