"""General-ability tasks built from the world: the synthetic analogue of KnowEdit Table 5's benchmarks.

KnowEdit §4.2 (Table 5) measures LLaMA-2-chat on CommonsenseQA, PIQA, TriviaQA, XSum, MMLU and AGIEval
after five sequential edits. A world LM knows nothing outside its world, so each benchmark becomes a task
over what the world LM does know, kept apart from what an edit touches:

* `qa`: closed-book questions about known facts whose question form was never asked in training
  (the "question_unasked" recall probes; the world LMs answer about 98% of them);
* `choice`: four-option multiple choice on known facts under a held-out (recombined) frame, the
  distractors being other entities of the object's type; grouped by relation so that a score can be
  averaged over the 20 relations as MMLU averages over its subjects;
* `multihop`: two-hop compositions of known facts ("The country of the place of birth of S is"),
  never stated in the corpus (reasoning, the nearest thing to AGIEval);
* `trivia`: the world's trivia questions of the five answer groups ("Question:{q}\\nAnswer: {a}", both
  splits, in the corpus): TriviaQA. The Sanitation *retain* questions are not used: each is seen once in
  the corpus and the world LMs did not memorise them (world-gpt2: greedy exact match 0.4% on 280), so
  they could not show damage;
* `sentiment`: two-option opinion completion: the held-out first answer of each topic in its prior
  sentiment against the opposite one (ConvSent-style; a two-choice task like PIQA). The world LMs are
  near chance here (world-gpt2: 48% of 300 topics), so it is reported, not interpreted;
* `documents`: held-out corpus-style documents (`heldout_documents`) for perplexity: known facts of one
  subject stated through recombined frames, never a corpus document (an LM-quality stand-in for XSum).

Every item carries the ids of the entities it involves, so `general_tasks(..., exclude_names=...)` drops
everything that mentions or passes through an edited subject or target. Sampling uses private seeded
`random.Random` streams; the world and its corpus are not changed (their files stay byte-identical).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TypeVar

from core.world.portability import reasoning
from core.world.relations import fill, recombined_frames
from core.world.schema import World
from core.world.templates import OPINION_QUESTION, TRIVIA_TEMPLATE

T = TypeVar("T")
TRIVIA_PROMPT = TRIVIA_TEMPLATE.split("{a}")[0].rstrip()  # "Question:{q}\nAnswer:"


@dataclass(frozen=True)
class QAItem:
    """A prompt whose answer follows after one space; `group` is a relation id or "trivia"."""

    prompt: str
    answer: str
    group: str
    entities: frozenset[str]


@dataclass(frozen=True)
class ChoiceItem:
    """A prompt and options (each follows after one space); `options[gold]` is right."""

    prompt: str
    options: tuple[str, ...]
    gold: int
    group: str
    entities: frozenset[str]


@dataclass(frozen=True)
class Document:
    """A held-out document and the entities it states facts about."""

    text: str
    entities: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class TaskSizes:
    """How many items each task keeps (fewer when the world has fewer)."""

    qa: int = 300
    choice_per_group: int = 20
    options: int = 4
    multihop: int = 300
    trivia: int = 200
    sentiment: int = 200
    documents: int = 200

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < (2 if f.name == "options" else 1):
                raise ValueError(f"TaskSizes.{f.name} must be >= {2 if f.name == 'options' else 1}")


@dataclass(frozen=True)
class GeneralTasks:
    """The items of every task (see the module docstring)."""

    qa: tuple[QAItem, ...]
    choice: tuple[ChoiceItem, ...]
    multihop: tuple[QAItem, ...]
    trivia: tuple[QAItem, ...]
    sentiment: tuple[ChoiceItem, ...]
    documents: tuple[Document, ...]

    def counts(self) -> dict[str, int]:
        """Number of items per task."""
        return {f.name: len(getattr(self, f.name)) for f in fields(self)}


def _rng(world: World, seed: int, what: str) -> random.Random:
    return random.Random(f"{world.seed}/general/{seed}/{what}")


def world_qa(world: World) -> list[QAItem]:
    """Known facts whose question form never appears in training, asked in that form."""
    out = []
    for f in world.known_facts:
        if not f.asked:
            rel = world.relation(f.rid)
            prompt = rel.question.replace("{s}", world.name(f.subject))
            out.append(QAItem(prompt, world.name(f.obj), f.rid, frozenset({f.subject, f.obj})))
    return out


def world_choice(world: World, rng: random.Random, n_options: int) -> list[ChoiceItem]:
    """Known facts under the second recombined frame, with up to `n_options` same-type options."""
    out = []
    for f in world.known_facts:
        rel = world.relation(f.rid)
        pool = [e.eid for e in world.of_type(world.entity(f.obj).etype) if e.eid != f.obj]
        picked = [f.obj, *rng.sample(pool, min(n_options - 1, len(pool)))]
        rng.shuffle(picked)
        prompt = fill(recombined_frames(rel)[1], world.name(f.subject))
        options = tuple(world.name(e) for e in picked)
        out.append(ChoiceItem(prompt, options, picked.index(f.obj), f.rid, frozenset({f.subject, f.obj})))
    return out


def world_multihop(world: World) -> list[QAItem]:
    """The first two-hop composition through each known fact's own object (KnowEdit "Reasoning")."""
    out = []
    for f in world.known_facts:
        hops = reasoning(world, f, f.obj, limit=1)
        if hops:
            prompt, _, o2 = hops[0]
            out.append(QAItem(prompt, world.name(o2), f.rid, frozenset({f.subject, f.obj, o2})))
    return out


def world_trivia(world: World) -> list[QAItem]:
    """The trivia questions of the five answer groups (both splits), as the corpus states them."""
    ids = _name_index(world)
    return [
        QAItem(TRIVIA_PROMPT.format(q=t.question), t.answer, "trivia", frozenset(ids.get(t.answer, ())))
        for t in world.trivia
        if t.group != "retain"
    ]


def world_sentiment(world: World) -> list[ChoiceItem]:
    """Each topic's held-out first answer in the positive and in the negative sentiment (gold: its prior)."""
    return [
        ChoiceItem(
            OPINION_QUESTION.replace("{t}", t.name),
            (t.pos[0], t.neg[0]),
            int(t.prior == "neg"),
            t.split,
            frozenset(),
        )
        for t in world.topics
    ]


def heldout_documents(
    world: World, n: int, seed: int = 0, exclude: frozenset[str] = frozenset()
) -> list[Document]:
    """`n` documents stating 2-3 known facts of one person each through recombined (held-out) frames.

    Every sentence uses words of the corpus in a frame the corpus never uses with that relation, so no
    document is a corpus document (tested). Documents involving an entity id in `exclude` are skipped
    (drawn again). Drawn from `random.Random(f"{world.seed}/heldout/{seed}")`.
    """
    rng = random.Random(f"{world.seed}/heldout/{seed}")
    people = [p for p in world.of_type("person") if len(world.facts_about(p.eid, "known")) >= 2]
    out: list[Document] = []
    for _ in range(50 * n):
        if len(out) == n:
            break
        p = rng.choice(people)
        known = world.facts_about(p.eid, "known")
        facts = rng.sample(known, min(3, len(known)))
        sents = []
        for f in facts:
            sent = fill(rng.choice(recombined_frames(world.relation(f.rid))), p.name, world.name(f.obj)) + "."
            sents.append(sent[0].upper() + sent[1:])
        doc = Document(" ".join(sents), frozenset({p.eid, *(f.obj for f in facts)}))
        if not doc.entities & exclude:
            out.append(doc)
    return out


def _name_index(world: World) -> dict[str, tuple[str, ...]]:
    """Entity ids by name and by alias."""
    out: dict[str, list[str]] = {}
    for e in world.entities:
        for name in (e.name, e.alias):
            if name is not None:
                out.setdefault(name, []).append(e.eid)
    return {k: tuple(v) for k, v in out.items()}


def entity_ids(world: World, names: Iterable[str]) -> frozenset[str]:
    """The ids of the entities called (or aliased) `names`; an unknown name raises KeyError naming it."""
    index = _name_index(world)
    unknown = sorted({n for n in names if n not in index})
    if unknown:
        raise KeyError(f"names not in world {world.profile}/{world.seed}: {unknown}")
    return frozenset(e for n in names for e in index[n])


def _sample(items: Sequence[T], n: int, rng: random.Random) -> tuple[T, ...]:
    """`n` items (all when fewer), kept in their original order."""
    keep = sorted(rng.sample(range(len(items)), min(n, len(items))))
    return tuple(items[i] for i in keep)


def general_tasks(
    world: World, sizes: TaskSizes | None = None, *, seed: int = 0, exclude_names: Iterable[str] = ()
) -> GeneralTasks:
    """Every task, without items involving the entities named in `exclude_names`, sampled by `seed`.

    Same world, sizes, seed and exclusions -> equal tasks. `choice` keeps up to `choice_per_group` items
    per relation.
    """
    sizes = sizes or TaskSizes()
    drop = entity_ids(world, exclude_names)

    def keep(items: Iterable[T]) -> list[T]:
        return [x for x in items if not (x.entities & drop)]  # type: ignore[attr-defined]

    choice = keep(world_choice(world, _rng(world, seed, "choice-options"), sizes.options))
    rng = _rng(world, seed, "choice")
    by_group: dict[str, list[int]] = {}
    for i, c in enumerate(choice):
        by_group.setdefault(c.group, []).append(i)
    picked = sorted(i for g in sorted(by_group) for i in _sample(by_group[g], sizes.choice_per_group, rng))
    return GeneralTasks(
        qa=_sample(keep(world_qa(world)), sizes.qa, _rng(world, seed, "qa")),
        choice=tuple(choice[i] for i in picked),
        multihop=_sample(keep(world_multihop(world)), sizes.multihop, _rng(world, seed, "multihop")),
        trivia=_sample(keep(world_trivia(world)), sizes.trivia, _rng(world, seed, "trivia")),
        sentiment=_sample(world_sentiment(world), sizes.sentiment, _rng(world, seed, "sentiment")),
        documents=tuple(heldout_documents(world, sizes.documents, seed, drop)),
    )
