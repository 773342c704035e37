"""Token classes of a traced prompt and the average indirect effect per class (ROME Fig. 2, §2.1).

ROME averages the causal traces of many facts over six token classes (its notebook's `read_knowledge`):
first subject token, middle subject tokens, LAST subject token, first subsequent token, further tokens,
last token. As there, the classes may overlap (a one-token subject is both first and last subject
token; when one token follows the subject it is both first subsequent and last token) and the "middle"
and "further" classes add every token they hold, so a class average is over token instances; a prompt
ending with its subject has no subsequent token and its last token is also its last subject token. Tokens
before the subject (a prefix such as "The country of", or BOS) belong to no class, as in ROME.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.locate.causal_trace import TraceResult

TOKEN_CLASSES: tuple[str, ...] = (
    "first_subject",
    "middle_subject",
    "last_subject",
    "first_subsequent",
    "further",
    "last",
)


def token_class_positions(subject_range: tuple[int, int], n_tokens: int) -> dict[str, list[int]]:
    """Positions of each class (TOKEN_CLASSES order) for a subject at [b, e) in a prompt of `n_tokens`."""
    b, e = subject_range
    if not 0 <= b < e <= n_tokens:
        raise ValueError(f"subject range {subject_range} is not inside {n_tokens} tokens")
    last = n_tokens - 1
    return {
        "first_subject": [b],
        "middle_subject": list(range(b + 1, e - 1)),
        "last_subject": [e - 1],
        "first_subsequent": [e] if e <= last else [],
        "further": list(range(e + 1, last)),
        "last": [last],
    }


@dataclass(frozen=True, eq=False)
class AverageTrace:
    """Mean over token instances of each class; arrays are (n_classes, n_layers), rows in `classes` order."""

    classes: tuple[str, ...]
    indirect_effect: np.ndarray  # mean of restored - corrupted
    restored: np.ndarray  # mean restored prob
    counts: np.ndarray  # (n_classes,) token instances averaged per class
    clean_prob: float  # mean p* over the facts
    corrupted_prob: float  # mean corrupted prob over the facts
    n_facts: int

    def row(self, cls: str) -> np.ndarray:
        """The (n_layers,) average indirect effect of one class."""
        return self.indirect_effect[self.classes.index(cls)]


def average_indirect_effect(results: Sequence[TraceResult]) -> AverageTrace:
    """Average indirect effect per (token class, layer) over traces of one kind (ROME Fig. 2).

    A class with no instance in any trace gets NaN rows and count 0.
    """
    if not results:
        raise ValueError("no traces to average")
    n_layers = results[0].n_layers
    if any(r.n_layers != n_layers for r in results):
        raise ValueError("traces come from models of different depths")
    kinds = {(r.kind, r.severed, r.window) for r in results}
    if len(kinds) > 1:
        raise ValueError(f"traces of different kinds cannot be averaged: {sorted(map(str, kinds))}")
    k = len(TOKEN_CLASSES)
    sum_ie, sum_p, counts = np.zeros((k, n_layers)), np.zeros((k, n_layers)), np.zeros(k, dtype=np.int64)
    for r in results:
        restored = r.restored.double().numpy()  # (n_layers, n_tokens)
        ie = restored - r.corrupted_prob
        for j, pos in enumerate(token_class_positions(r.subject_range, r.n_tokens).values()):
            if pos:
                sum_ie[j] += ie[:, pos].sum(1)
                sum_p[j] += restored[:, pos].sum(1)
                counts[j] += len(pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.where(counts > 0, counts, np.nan)[:, None]
        mean_ie, mean_p = sum_ie / denom, sum_p / denom
    return AverageTrace(
        classes=TOKEN_CLASSES,
        indirect_effect=mean_ie,
        restored=mean_p,
        counts=counts,
        clean_prob=float(np.mean([r.clean_prob for r in results])),
        corrupted_prob=float(np.mean([r.corrupted_prob for r in results])),
        n_facts=len(results),
    )
