"""Portability and locality probes derived from the world graph (shared by the dataset emitters).

* Reasoning: multi-hop compositions through the *edited* object ("The country of the place of birth of
  S is" -> country of the new city), one and two hops.
* Subject_Aliasing: the edit prompt with the subject's alias (a person's short name, a city's former name).
* Logical_Generalization: a place of death means "not alive"; spouse is symmetric; father/child inverse.
* Relation_Specificity: the subject's other known facts (their answers are unchanged by the edit).
* Forgetfulness: "The <noun> of S, which is not <target_new>, is" -> the old object.

Every function returns plain (prompt, answer) pairs; the emitters wrap them in each layout's shape.
"""

from __future__ import annotations

from core.world.corpus import alive_question
from core.world.relations import Relation
from core.world.schema import Fact, World

NOUNS: dict[str, str] = {
    "P19": "place of birth", "P20": "place of death", "P27": "country of citizenship", "P106": "occupation",
    "P108": "employer", "P69": "alma mater", "P103": "native language", "P26": "spouse", "P22": "father",
    "P17": "country", "P36": "capital", "P30": "continent", "P37": "official language",
    "P159": "headquarters location", "P112": "founder", "P50": "author", "P136": "genre",
    "P101": "field of work", "P166": "award", "P131": "campus location",
}
NOT_ALIVE = ("no", "incorrect", "false", "is not alive", "is dead")
Pair = tuple[str, str]


def cloze(rel: Relation, subject: str) -> str:
    """The relation's KnowEdit cloze for `subject` ("The place of birth of S is")."""
    return rel.cloze.replace("{s}", subject)


def names_with_alias(world: World, eid: str) -> list[str]:
    """[name] or [name, alias]: the answer aliases KnowEdit nests in ground-truth lists."""
    e = world.entity(eid)
    return [e.name] if e.alias is None else [e.name, e.alias]


def _hops(world: World, eid: str) -> list[str]:
    """Relations with a known value for entity `eid`, in table order (skipping symmetric spouse)."""
    return [r.rid for r in world.relations if r.rid != "P26" and world.value(eid, r.rid) is not None]


def reasoning(world: World, fact: Fact, new_obj: str, limit: int = 3) -> list[tuple[str, str, str]]:
    """Multi-hop (cloze prompt, question prompt, answer id) through `new_obj`: one hop, then two hops."""
    s = world.name(fact.subject)
    first = NOUNS[fact.rid]
    out = []
    for r2 in _hops(world, new_obj):
        o2 = world.value(new_obj, r2)
        if o2 is None or o2 == fact.subject:
            continue
        out.append((f"The {NOUNS[r2]} of the {first} of {s} is", f"What is the {NOUNS[r2]} of the {first} of {s}?",
                    o2))
        for r3 in _hops(world, o2)[:1]:
            o3 = world.value(o2, r3)
            if o3 is not None and o3 not in (fact.subject, new_obj):
                out.append((f"The {NOUNS[r3]} of the {NOUNS[r2]} of the {first} of {s} is",
                            f"What is the {NOUNS[r3]} of the {NOUNS[r2]} of the {first} of {s}?", o3))
    return out[:limit]


def subject_aliasing(world: World, fact: Fact) -> str | None:
    """The cloze with the subject's alias, or None when the subject has no alias."""
    alias = world.entity(fact.subject).alias
    return None if alias is None else cloze(world.relation(fact.rid), alias)


def logical(world: World, fact: Fact, new_obj: str) -> list[tuple[str, list[str]]]:
    """Logical consequences of (subject, rid, new_obj): (prompt, accepted answers)."""
    s = world.name(fact.subject)
    if fact.rid == "P20":
        return [(alive_question(s), list(NOT_ALIVE))]
    if fact.rid == "P26":
        return [(cloze(world.relation("P26"), world.name(new_obj)), [s])]
    if fact.rid == "P22":
        children = [f for f in world.known_facts if f.rid == "P22" and f.obj == new_obj]
        if not children:
            return [(f"The child of {world.name(new_obj)} is", [s])]
    return []


def relation_specificity(world: World, fact: Fact, limit: int = 2) -> list[tuple[Relation, str]]:
    """Up to `limit` other known facts of the subject: (relation, object id)."""
    others = [f for f in world.facts_about(fact.subject, "known") if f.rid != fact.rid]
    return [(world.relation(f.rid), f.obj) for f in others[:limit]]


def forgetfulness(world: World, fact: Fact, new_obj: str) -> Pair:
    """("The <noun> of S, which is not <new>, is", old object name)."""
    prompt = cloze(world.relation(fact.rid), world.name(fact.subject))
    return f"{prompt[: -len(' is')]}, which is not {world.name(new_obj)}, is", world.name(fact.obj)
