"""Recall probes of the synthetic world: does a world LM know its known facts, and how far does it generalise?

Every probe's `prompt` ends right before the object (no trailing space) and its `answer` is the full
object name, which follows after one space; the world makes the object the unique correct
continuation (functional relations, unique names, no name inside another).

* "trained": every known fact under each training frame, plus the question form for asked subjects;
* "recombined": two held-out frames per fact, built only from words of the training text;
* "question_unasked": the question form for subjects whose question was never asked in training;
* "free_paraphrase": two paraphrases per fact containing words never seen in training (reported only).
"""

from __future__ import annotations

from core.types import Probe
from core.world.corpus import pretraining_corpus
from core.world.names import words_of
from core.world.relations import fill, recombined_frames, training_frames
from core.world.schema import World

PROBE_KINDS = ("trained", "recombined", "question_unasked", "free_paraphrase")


def recall_probes(world: World) -> dict[str, list[Probe]]:
    """Probes of the known facts, keyed by PROBE_KINDS (in world fact order)."""
    out: dict[str, list[Probe]] = {k: [] for k in PROBE_KINDS}
    for f in world.known_facts:
        rel, s, o = world.relation(f.rid), world.name(f.subject), world.name(f.obj)
        out["trained"] += [Probe(fill(frame, s), o) for frame in training_frames(rel)]
        question = Probe(rel.question.replace("{s}", s), o)
        out["trained" if f.asked else "question_unasked"].append(question)
        out["recombined"] += [Probe(fill(frame, s), o) for frame in recombined_frames(rel)]
        out["free_paraphrase"] += [Probe(fill(frame, s), o) for frame in rel.free]
    return out


def corpus_vocabulary(world: World) -> frozenset[str]:
    """The set of (case-sensitive) words of the pretraining corpus."""
    return frozenset(w for doc in pretraining_corpus(world) for w in words_of(doc))


def _missing(probes: list[Probe], vocab: frozenset[str]) -> list[str]:
    return sorted({w for p in probes for w in words_of(f"{p.prompt} {p.answer}") if w not in vocab})


def heldout_vocabulary_violations(world: World) -> list[str]:
    """Words of "recombined" and "question_unasked" probes absent from the corpus (must be empty)."""
    probes = recall_probes(world)
    return _missing(probes["recombined"] + probes["question_unasked"], corpus_vocabulary(world))


def free_paraphrase_novel_words(world: World) -> list[str]:
    """Words of the free paraphrases that never occur in the corpus (expected non-empty)."""
    return _missing(recall_probes(world)["free_paraphrase"], corpus_vocabulary(world))
