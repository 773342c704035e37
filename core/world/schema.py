"""Frozen dataclasses of the synthetic world: entities, facts, opinion topics, trivia, NQ-like items.

A `World` is immutable; its look-up tables are built lazily per instance (`cached_property`), never
at module level. Entity ids are Wikidata-style ("Q17"), relation ids come from `relations.RELATIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from core.world.relations import Relation

FactStatus = Literal["known", "recent"]


@dataclass(frozen=True)
class Entity:
    """A typed entity. `alias` is a person's short name or a city's former name (None if none).

    `born`/`died` are years (persons: birth/death; companies: founding year in `born`).
    """

    eid: str
    etype: str
    name: str
    alias: str | None = None
    gender: Literal["f", "m"] | None = None
    born: int | None = None
    died: int | None = None


@dataclass(frozen=True)
class Fact:
    """(subject, relation, object). `known` facts are in the pretraining corpus, `recent` ones never.

    `asked`: the relation's question form about this subject appears in training.
    `counterfactual`: an object of the same type that the corpus never states for this subject.
    `year`: the year a recent fact happened (after the world's cutoff); None for known facts.
    """

    subject: str
    rid: str
    obj: str
    status: FactStatus
    asked: bool
    counterfactual: str
    year: int | None = None


@dataclass(frozen=True)
class Topic:
    """An opinion topic (ConvSent): prior sentiment held by the corpus, split, and answer sentences."""

    name: str
    split: Literal["train", "val", "test"]
    prior: Literal["pos", "neg"]
    pos: tuple[str, ...]
    neg: tuple[str, ...]


@dataclass(frozen=True)
class Trivia:
    """A trivia question (Sanitation). `group` is the answer group key, or "retain"."""

    question: str
    answer: str
    subject: str
    group: str
    split: Literal["train", "test"]


@dataclass(frozen=True)
class NQItem:
    """An NQ-like locality question ("nq question: ...", lower case, no question mark) and its answer."""

    question: str
    answer: str


@dataclass(frozen=True)
class World:
    """The whole seeded world. All collections are tuples in a stable generation order."""

    profile: str
    seed: int
    cutoff: int
    entities: tuple[Entity, ...]
    relations: tuple[Relation, ...]
    facts: tuple[Fact, ...]
    topics: tuple[Topic, ...]
    trivia: tuple[Trivia, ...]
    nq: tuple[NQItem, ...]
    filler: tuple[str, ...]

    @cached_property
    def _by_id(self) -> dict[str, Entity]:
        return {e.eid: e for e in self.entities}

    @cached_property
    def _rel_by_id(self) -> dict[str, Relation]:
        return {r.rid: r for r in self.relations}

    @cached_property
    def _facts_by_subject(self) -> dict[str, tuple[Fact, ...]]:
        out: dict[str, list[Fact]] = {}
        for f in self.facts:
            out.setdefault(f.subject, []).append(f)
        return {k: tuple(v) for k, v in out.items()}

    def entity(self, eid: str) -> Entity:
        """The entity with id `eid`."""
        return self._by_id[eid]

    def name(self, eid: str) -> str:
        """The name of entity `eid`."""
        return self._by_id[eid].name

    def relation(self, rid: str) -> Relation:
        """The relation with id `rid`."""
        return self._rel_by_id[rid]

    def of_type(self, etype: str) -> tuple[Entity, ...]:
        """Entities of one type, in generation order."""
        return tuple(e for e in self.entities if e.etype == etype)

    def facts_about(self, eid: str, status: FactStatus | None = None) -> tuple[Fact, ...]:
        """Facts whose subject is `eid` (optionally only known or only recent ones)."""
        fs = self._facts_by_subject.get(eid, ())
        return fs if status is None else tuple(f for f in fs if f.status == status)

    def lookup(self, eid: str, rid: str, status: FactStatus | None = "known") -> Fact | None:
        """The fact (eid, rid, ?) with the given status, or None."""
        for f in self.facts_about(eid, status):
            if f.rid == rid:
                return f
        return None

    def value(self, eid: str, rid: str, with_recent: bool = False) -> str | None:
        """The object id of (eid, rid), from known facts (recent ones win when `with_recent`)."""
        if with_recent and (f := self.lookup(eid, rid, "recent")) is not None:
            return f.obj
        f = self.lookup(eid, rid, "known")
        return None if f is None else f.obj

    @property
    def known_facts(self) -> tuple[Fact, ...]:
        """Facts stated in the pretraining corpus."""
        return tuple(f for f in self.facts if f.status == "known")

    @property
    def recent_facts(self) -> tuple[Fact, ...]:
        """Facts after the cutoff (WikiData_recent insertions), never in the corpus."""
        return tuple(f for f in self.facts if f.status == "recent")
