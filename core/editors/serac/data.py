"""SERAC training data from edit requests: scope-classifier pairs and counterfactual-model examples.

Mitchell et al. 2022 (§3) train both parts on a dataset of edits, each with an in-scope set I(z_e)
(inputs whose answer the edit changes) and an out-of-scope set O(z_e) (inputs it must not change).
From an `EditRequest` of the train splits (zsre-mend-train, recent-train, counterfact-train):
- in scope: the edit prompt and each rephrase (answer `target_new`) and each portability probe
  (Subject_Aliasing, Reasoning, ...: their answers follow from the edit);
- out of scope: each locality probe (Relation_Specificity, Forgetfulness, NQ: the original answer).
Scope-classifier pairs (edit i, query text, label) use every in-scope query of i as a positive and, as
negatives, i's locality probes, in-scope queries of up to `n_hard` edits of the same dataset sharing
i's subject (another relation) and up to `n_hard` sharing its relation template (another subject), the
paper's hard negatives, plus `n_random` random other edits. Each query appears twice, alone and followed
by " " + its answer, because the router classifies whole teacher-forced rows (prompt + answer) as well
as bare prompts (generation). Edits with the same subject and template (the same fact) are never used as
each other's negatives. Counterfactual examples pair the edit text with in-scope queries (the paper's
objective) and, when asked, with the out-of-scope ones (original answers), so that h also keeps
unrelated facts when the classifier routes a probe to it by mistake.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from core.types import EditRequest


@dataclass(frozen=True)
class Query:
    """A model input and the answer the edited model should give; `kind` says where it came from."""

    prompt: str
    answer: str
    kind: str  # "prompt", "rephrase", "portability/<key>", "locality/<key>"

    def texts(self) -> tuple[str, str]:
        """The bare prompt and the teacher-forced row text (prompt + " " + answer)."""
        return self.prompt, f"{self.prompt} {self.answer}"


@dataclass(frozen=True)
class ScopePair:
    """One classifier example: query `text` against edit `edit` (an index), label 1 when in scope."""

    edit: int
    text: str
    label: int
    kind: str  # "in_scope", "locality", "same_subject", "same_relation", "random"


@dataclass(frozen=True)
class CFExample:
    """One counterfactual-model example: answer `answer` to `prompt` given the edit text."""

    edit_text: str
    prompt: str
    answer: str
    in_scope: bool


def in_scope(r: EditRequest) -> list[Query]:
    """The edit prompt, its rephrases and its portability probes, with their answers."""
    out = [Query(r.prompt, r.target_new, "prompt")]
    out += [Query(p, r.target_new, "rephrase") for p in r.rephrases]
    out += [
        Query(p.prompt, p.answer, f"portability/{k}") for k in sorted(r.portability) for p in r.portability[k]
    ]
    return out


def out_of_scope(r: EditRequest) -> list[Query]:
    """The locality probes with their (original) answers."""
    return [Query(p.prompt, p.answer, f"locality/{k}") for k in sorted(r.locality) for p in r.locality[k]]


def relation_template(r: EditRequest) -> str:
    """The prompt with its subject cut out: equal templates mean the same relation phrasing."""
    return r.prompt.replace(r.subject, "{}") if r.subject and r.subject in r.prompt else r.prompt


def split_requests(
    requests: Sequence[EditRequest], val_fraction: float
) -> tuple[list[EditRequest], list[EditRequest]]:
    """(train, validation): the last ceil(n * val_fraction) requests are held out (none when 0)."""
    cut = len(requests) - math.ceil(len(requests) * val_fraction)
    return list(requests[:cut]), list(requests[cut:])


def scope_pairs(
    requests: Sequence[EditRequest], groups: Sequence[int], *, n_hard: int, n_random: int, seed: int
) -> list[ScopePair]:
    """Classifier pairs for every request (see the module docstring); `groups[i]` is i's dataset."""
    rng = random.Random(seed)
    subjects, templates = [r.subject for r in requests], [relation_template(r) for r in requests]
    by_subject: dict[tuple[int, str], list[int]] = {}
    by_template: dict[tuple[int, str], list[int]] = {}
    for i, g in enumerate(groups):
        by_subject.setdefault((g, subjects[i]), []).append(i)
        by_template.setdefault((g, templates[i]), []).append(i)

    def same_fact(i: int, j: int) -> bool:
        return subjects[i] == subjects[j] and templates[i] == templates[j]

    pairs: list[ScopePair] = []
    for i, r in enumerate(requests):
        pairs += [ScopePair(i, t, 1, "in_scope") for q in in_scope(r) for t in q.texts()]
        pairs += [ScopePair(i, t, 0, "locality") for q in out_of_scope(r) for t in q.texts()]
        for kind, pool in (
            ("same_subject", by_subject[groups[i], subjects[i]]),
            ("same_relation", by_template[groups[i], templates[i]]),
        ):
            others = [j for j in pool if j != i and not same_fact(i, j)]
            for j in rng.sample(others, min(n_hard, len(others))):
                pairs += [ScopePair(i, t, 0, kind) for q in in_scope(requests[j]) for t in q.texts()]
        picked = 0
        for _ in range(4 * n_random):
            if picked == n_random or len(requests) < 2:
                break
            j = rng.randrange(len(requests))
            if j != i and not same_fact(i, j):
                pairs += [ScopePair(i, t, 0, "random") for t in in_scope(requests[j])[0].texts()]
                picked += 1
    return pairs


def cf_examples(
    requests: Sequence[EditRequest],
    edit_template: str,
    *,
    out_of_scope_too: bool,
    random_targets: int = 0,
    seed: int = 0,
) -> list[CFExample]:
    """[edit; query] -> answer examples: in-scope queries, plus locality probes when `out_of_scope_too`.

    `random_targets` > 0 adds, per request, that many copies of the edit with a target drawn at random
    from the targets and answers of `requests`, paired with its prompt and rephrases (whose answer is the
    target by definition; portability answers are not, so they are not copied). The world's train splits
    reuse a few hundred target strings, so without such copies h can lower its loss by learning which
    targets are likely instead of reading the target from the edit text, which is what it must do.
    """
    rng = random.Random(seed)
    pool = sorted({r.target_new for r in requests} | {q.answer for r in requests for q in in_scope(r)})
    out = []
    for r in requests:
        text = edit_template.format(prompt=r.prompt, target=r.target_new)
        out += [CFExample(text, q.prompt, q.answer, True) for q in in_scope(r)]
        if out_of_scope_too:
            out += [CFExample(text, q.prompt, q.answer, False) for q in out_of_scope(r)]
        for _ in range(random_targets):
            target = rng.choice(pool)
            text = edit_template.format(prompt=r.prompt, target=target)
            out += [CFExample(text, p, target, True) for p in (r.prompt, *r.rephrases)]
    return out
