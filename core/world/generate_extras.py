"""Seeded generation of the world's non-relational parts: opinion topics (ConvSent), trivia with five
answer groups plus retain questions (Sanitation), NQ-like locality questions, and neutral filler text.

Called by `generate.build_world` with its own `random.Random` and `NameForge`, after the entities.
"""

from __future__ import annotations

import random

from core.world.names import NameForge
from core.world.profiles import WorldSize
from core.world.schema import Entity, NQItem, Topic, Trivia
from core.world.templates import (
    ANIMALS,
    COLOURS,
    FILLER_SENTENCES,
    NEG_ANSWERS,
    NQ_FRAMES,
    NUMBERS,
    POS_ANSWERS,
    TOPIC_KINDS,
    TRIVIA_FRAMES,
)

TRIVIA_TYPES = ("city", "person", "country", "language", "company")


def make_topics(rng: random.Random, forge: NameForge, sizes: tuple[int, int, int]) -> tuple[Topic, ...]:
    """Opinion topics with a prior sentiment (what the corpus says) and all answer sentences."""
    out = []
    for split, n in zip(("train", "val", "test"), sizes, strict=True):
        for _ in range(n):
            name = forge.name("{} " + rng.choice(TOPIC_KINDS))
            k = rng.randrange(len(POS_ANSWERS))
            pos = tuple(a.replace("{t}", name) for a in POS_ANSWERS[k:] + POS_ANSWERS[:k])
            neg = tuple(a.replace("{t}", name) for a in NEG_ANSWERS[k:] + NEG_ANSWERS[:k])
            out.append(Topic(name, split, rng.choice(("pos", "neg")), pos, neg))  # type: ignore[arg-type]
    return tuple(out)


def make_trivia(rng: random.Random, forge: NameForge, sz: WorldSize, places: dict[str, list[Entity]],
                people: list[Entity]) -> tuple[Trivia, ...]:
    """Five answer groups (one entity of each TRIVIA_TYPES type) of 2 x `trivia_per_answer` questions
    each, plus retain questions whose answers are other entities. Every question has its own item."""
    pools = {**places, "person": people}
    groups = {t: pools[t][0] for t in TRIVIA_TYPES}
    out: list[Trivia] = []

    def ask(etype: str, answer: Entity, group: str, split: str, i: int) -> None:
        frames = TRIVIA_FRAMES[etype]
        item = forge.name("{}")
        q = frames[i % len(frames)].replace("{x}", item)
        out.append(Trivia(q, answer.name, item, group, split))  # type: ignore[arg-type]

    for split in ("train", "test"):
        for t in TRIVIA_TYPES:
            for i in range(sz.trivia_per_answer):
                ask(t, groups[t], groups[t].name.lower(), split, i)
    for split, n in zip(("train", "test"), sz.trivia_retain, strict=True):
        for i in range(n):
            t = TRIVIA_TYPES[i % len(TRIVIA_TYPES)]
            answer = rng.choice([e for e in pools[t] if e is not groups[t]])
            ask(t, answer, "retain", split, i // len(TRIVIA_TYPES))
    return tuple(out)


def make_nq(rng: random.Random, forge: NameForge, n: int) -> tuple[NQItem, ...]:
    """NQ-like questions about made-up landmarks; answers are years, numbers, colours or animals."""
    banks = {"number": NUMBERS, "colour": COLOURS, "animal": ANIMALS}
    out = []
    for i in range(n):
        frame, kind = NQ_FRAMES[i % len(NQ_FRAMES)]
        item = forge.name("{}").lower()
        answer = str(rng.randint(1500, 1999)) if kind == "year" else rng.choice(banks[kind])
        out.append(NQItem(frame.replace("{x}", item), answer))
    return tuple(out)


def make_filler(rng: random.Random, n: int) -> tuple[str, ...]:
    """Neutral multi-sentence passages without entity names (about 60-90 words each)."""
    out = []
    for _ in range(n):
        sents = rng.sample(FILLER_SENTENCES, 6)
        text = " ".join(s.replace("{c}", rng.choice(COLOURS)).replace("{n}", rng.choice(NUMBERS))
                        .replace("{a}", rng.choice(ANIMALS)) for s in sents)
        out.append(text)
    return tuple(out)
