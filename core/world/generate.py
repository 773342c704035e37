"""Seeded generation of the synthetic world: typed entities, known facts, recent facts, counterfactuals.

`build_world(profile, seed)` is deterministic: one `random.Random(seed)` drives every choice, and all
iteration is over lists in generation order. Known facts are dated before `CUTOFF` and go into the
pretraining corpus; recent facts (a new place of death, employer, award, spouse, and companies founded
after the cutoff) exist only in the world. Opinion topics, trivia, NQ-like items and filler text come
from `generate_extras`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from itertools import count

from core.world.generate_extras import make_filler, make_nq, make_topics, make_trivia
from core.world.names import NameForge
from core.world.profiles import WorldSize, world_size
from core.world.relations import RELATIONS
from core.world.schema import Entity, Fact, World
from core.world.templates import (
    AWARD_SUFFIXES,
    COMPANY_SUFFIXES,
    FIELDS,
    GENRES,
    OCCUPATIONS,
    UNIVERSITY_SUFFIXES,
    WORK_NOUNS,
    reserved_words,
)

log = logging.getLogger(__name__)
CUTOFF = 2020
_OLDEST_ALIVE = 1925  # persons born earlier have died before the cutoff
_ASKED_RATE = 0.5


class _Builder:
    """Mutable scratch state while one world is generated (never escapes `build_world`)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.forge = NameForge(rng, reserved_words())
        self.ids = count(1)
        self.entities: list[Entity] = []
        self.triples: list[tuple[str, str, str, str, int | None]] = []  # s, rid, o, status, year

    def new(self, etype: str, name: str, **kw: object) -> Entity:
        e = Entity(f"Q{next(self.ids)}", etype, name, **kw)  # type: ignore[arg-type]
        self.entities.append(e)
        return e

    def fact(self, s: Entity, rid: str, o: Entity, status: str = "known", year: int | None = None) -> None:
        self.triples.append((s.eid, rid, o.eid, status, year))

    def recent_year(self) -> int:
        return CUTOFF + self.rng.randint(1, 4)


def _places(b: _Builder, sz: WorldSize) -> dict[str, list[Entity]]:
    r, f = b.rng, b.forge
    continents = [b.new("continent", f.name("{}")) for _ in range(sz.continents)]
    countries = [b.new("country", f.name("{}")) for _ in range(sz.countries)]
    languages = [b.new("language", f.name("{}")) for _ in range(sz.countries)]
    cities = []
    for i in range(sz.cities):
        alias = f.name("{}") if r.random() < 0.3 else None
        cities.append(b.new("city", f.name("{} {}" if r.random() < 0.25 else "{}"), alias=alias))
        b.fact(cities[-1], "P17", countries[i % len(countries)])
    for i, c in enumerate(countries):
        b.fact(c, "P36", cities[i])  # city i lies in country i (i % n == i for the first n cities)
        b.fact(c, "P30", continents[i % len(continents)] if i < len(continents) else r.choice(continents))
        b.fact(c, "P37", languages[i])
    universities = []
    for _ in range(sz.universities):
        universities.append(b.new("university", f.name("{} " + r.choice(UNIVERSITY_SUFFIXES))))
        b.fact(universities[-1], "P131", r.choice(cities))
    companies = [b.new("company", f.name("{} " + r.choice(COMPANY_SUFFIXES)), born=r.randint(1850, 2015))
                 for _ in range(sz.companies)]
    awards = [b.new("award", f.name("{} " + r.choice(AWARD_SUFFIXES))) for _ in range(sz.awards)]
    kinds = {"occupation": OCCUPATIONS, "field": FIELDS, "genre": GENRES}
    plain = {k: [b.new(k, n) for n in v if f.claim(n)] for k, v in kinds.items()}
    return {"continent": continents, "country": countries, "language": languages, "city": cities,
            "university": universities, "company": companies, "award": awards, **plain}


def _person(b: _Builder, born: int, surname: str | None = None, avoid: str = "") -> Entity:
    r, f = b.rng, b.forge
    gender = r.choice(("f", "m"))
    surname = surname or f.word()
    for _ in range(200):
        first = f.word(2)
        if first[0] == avoid or not f.claim(f"{first[0]}. {surname}"):
            continue
        if f.claim(f"{first} {surname}"):
            return b.new("person", f"{first} {surname}", alias=f"{first[0]}. {surname}", gender=gender,
                         born=born)
    raise RuntimeError("cannot name a person")


def _people(b: _Builder, sz: WorldSize, pl: dict[str, list[Entity]]) -> list[Entity]:
    r = b.rng
    people: list[Entity] = []
    for _ in range(sz.father_pairs):
        father = _person(b, r.randint(1880, 1950))
        child = _person(b, father.born + r.randint(22, 42), father.name.split()[-1], avoid=father.name[0])
        people += [father, child]
        b.fact(child, "P22", father)
    people += [_person(b, r.randint(1900, 2000)) for _ in range(sz.people - len(people))]
    country_of = {s: o for s, rid, o, *_ in b.triples if rid == "P17"}
    lang_of = {s: o for s, rid, o, *_ in b.triples if rid == "P37"}
    by_id = {e.eid: e for e in b.entities}
    final: list[Entity] = []
    for p in people:
        birth = r.choice(pl["city"])
        b.fact(p, "P19", birth)
        nation = by_id[country_of[birth.eid]] if r.random() < 0.8 else r.choice(pl["country"])
        b.fact(p, "P27", nation)
        b.fact(p, "P103", by_id[lang_of[nation.eid]] if r.random() < 0.8 else r.choice(pl["language"]))
        b.fact(p, "P106", r.choice(pl["occupation"]))
        b.fact(p, "P101", r.choice(pl["field"]))
        if r.random() < 0.8:
            b.fact(p, "P69", r.choice(pl["university"]))
        if r.random() < 0.7:
            b.fact(p, "P108", r.choice(pl["company"]))
        if r.random() < 0.2:
            b.fact(p, "P166", r.choice(pl["award"]))
        died = None
        if p.born < _OLDEST_ALIVE or (r.random() < 0.15 and p.born + 30 < CUTOFF):
            died = r.randint(p.born + 30, min(p.born + 95, CUTOFF))
            b.fact(p, "P20", r.choice(pl["city"]))
        final.append(Entity(p.eid, p.etype, p.name, p.alias, p.gender, p.born, died))
    dated = {p.eid: p for p in final}
    b.entities = [dated.get(e.eid, e) for e in b.entities]
    return final


def _pair(b: _Builder, people: list[Entity], share: float, status: str) -> None:
    """Marry pairs (both directions) among `people`, never within one family name."""
    pool = [p for p in people if b.rng.random() < share]
    while len(pool) >= 2:
        a = pool.pop()
        mate = next((q for q in pool if q.name.split()[-1] != a.name.split()[-1]), None)
        if mate is None:
            continue
        pool.remove(mate)
        year = b.recent_year() if status == "recent" else None
        b.fact(a, "P26", mate, status, year)
        b.fact(mate, "P26", a, status, year)


def _works_and_founders(b: _Builder, sz: WorldSize, pl: dict[str, list[Entity]], people: list[Entity]) -> None:
    r, f = b.rng, b.forge
    for c in pl["company"]:
        b.fact(c, "P159", r.choice(pl["city"]))
        b.fact(c, "P112", r.choice([p for p in people if p.born + 20 < c.born] or people))
    for _ in range(sz.works):
        w = b.new("work", f.name("{} " + r.choice(WORK_NOUNS)))
        b.fact(w, "P50", r.choice(people))
        b.fact(w, "P136", r.choice(pl["genre"]))


def _recent(b: _Builder, sz: WorldSize, pl: dict[str, list[Entity]], people: list[Entity]) -> None:
    r, f = b.rng, b.forge
    has = {(s, rid) for s, rid, *_ in b.triples}
    people = [p for p in people if (p.eid, "P20") not in has]  # only the living gain recent facts
    for p in people:
        if r.random() < 0.35:
            b.fact(p, "P20", r.choice(pl["city"]), "recent", b.recent_year())
        if (p.eid, "P108") not in has and r.random() < 0.8:
            b.fact(p, "P108", r.choice(pl["company"]), "recent", b.recent_year())
        if (p.eid, "P166") not in has and r.random() < 0.45:
            b.fact(p, "P166", r.choice(pl["award"]), "recent", b.recent_year())
    _pair(b, [p for p in people if (p.eid, "P26") not in has], 0.6, "recent")
    for _ in range(sz.emerging_companies):
        year = b.recent_year()
        c = b.new("company", f.name("{} " + r.choice(COMPANY_SUFFIXES)), born=year)
        b.fact(c, "P159", r.choice(pl["city"]), "recent", year)
        b.fact(c, "P112", r.choice(people), "recent", year)


def _facts(b: _Builder) -> tuple[Fact, ...]:
    """Freeze triples into facts with an `asked` flag and a counterfactual object each."""
    r = b.rng
    by_id = {e.eid: e for e in b.entities}
    by_type: dict[str, list[str]] = {}
    for e in b.entities:
        by_type.setdefault(e.etype, []).append(e.eid)
    linked: dict[str, set[str]] = {}
    for s, _, o, *_ in b.triples:
        linked.setdefault(s, {s}).add(o)
        linked.setdefault(o, {o}).add(s)
    out = []
    for s, rid, o, status, year in b.triples:
        pool = by_type[by_id[o].etype]
        cf = r.choice(pool)
        while cf in linked[s] or cf == o:
            cf = r.choice(pool)
        out.append(Fact(s, rid, o, status, r.random() < _ASKED_RATE, cf, year))  # type: ignore[arg-type]
    return _ensure_both_asked_and_unasked(out)


def _ensure_both_asked_and_unasked(facts: list[Fact]) -> tuple[Fact, ...]:
    """Every relation with >= 2 known facts has an asked and an unasked one (so question words are
    in the corpus and `question_unasked` is never empty for it)."""
    by_rid: dict[str, list[int]] = {}
    for i, f in enumerate(facts):
        if f.status == "known":
            by_rid.setdefault(f.rid, []).append(i)
    for idx in by_rid.values():
        if len(idx) >= 2 and all(facts[i].asked for i in idx):
            facts[idx[-1]] = replace(facts[idx[-1]], asked=False)
        if not any(facts[i].asked for i in idx):
            facts[idx[0]] = replace(facts[idx[0]], asked=True)
    return tuple(facts)


def build_world(profile: str = "default", seed: int = 0) -> World:
    """Generate the world for a size profile and seed (same arguments -> equal worlds)."""
    sz = world_size(profile)
    b = _Builder(random.Random(seed))
    pl = _places(b, sz)
    people = _people(b, sz, pl)
    _pair(b, people, 0.4, "known")
    _works_and_founders(b, sz, pl, people)
    _recent(b, sz, pl, people)
    facts = _facts(b)
    topics = make_topics(b.rng, b.forge, sz.topics)
    trivia = make_trivia(b.rng, b.forge, sz, pl, people)
    nq = make_nq(b.rng, b.forge, sz.nq)
    filler = make_filler(b.rng, sz.filler)
    world = World(profile=profile, seed=seed, cutoff=CUTOFF, entities=tuple(b.entities), relations=RELATIONS,
                  facts=facts, topics=topics, trivia=trivia, nq=nq, filler=filler)
    log.info("world %s/%d: %d entities, %d known facts, %d recent facts", profile, seed, len(world.entities),
             len(world.known_facts), len(world.recent_facts))
    return world
