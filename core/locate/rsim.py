"""RSim: overlap of the layers that causal tracing locates for related facts (KnowEdit §5, Figs. 8-9).

KnowEdit locates each fact with ROME's causal tracing, keeps its top-k layers and reports RSim, the
similarity of those layer sets within groups of related facts (KLoB's klob-r: one fact under different
prompts; klob-c: related facts), as a curve over k (Fig. 8: RSim < 0.6 once more than 5 layers count).
papers.md (§2.7) names RSim only as "layer overlap of ROME causal tracing" and gives no formula, so the
exact definition is [NF]. Implemented here, and to be replaced if the paper's text says otherwise:

* a fact's layer scores: the indirect effect at its LAST SUBJECT TOKEN, one value per layer (the token
  ROME edits at; `layer_scores(..., token="max")` takes the max over tokens instead);
* its located layers: the k layers of highest score, ties broken towards the lower layer index;
* RSim of a group: the mean Jaccard overlap |A ∩ B| / |A ∪ B| over all unordered pairs of its facts'
  layer sets (or, with `anchor=i`, over the pairs (fact i, other fact)); a group of one has RSim 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Literal

import torch

from core.locate.causal_trace import TraceResult

TokenChoice = Literal["last_subject", "max"]


def layer_scores(result: TraceResult, *, token: TokenChoice = "last_subject") -> torch.Tensor:
    """(n_layers,) indirect effect per layer at the last subject token, or the max over tokens."""
    ie = result.indirect_effect  # (n_layers, n_tokens)
    if token == "last_subject":
        return ie[:, result.subject_range[1] - 1].clone()
    if token == "max":
        return ie.max(dim=1).values
    raise ValueError(f"unknown token {token!r}; expected 'last_subject' or 'max'")


def top_k_layers(scores: torch.Tensor | Sequence[float], k: int) -> frozenset[int]:
    """The k layers of highest score; among equal scores the lower layer index wins (deterministic)."""
    values = torch.as_tensor(scores, dtype=torch.float64)
    if values.ndim != 1:
        raise ValueError("scores must be one value per layer")
    if not 1 <= k <= len(values):
        raise ValueError(f"k={k} outside [1, {len(values)}]")
    order = sorted(range(len(values)), key=lambda i: (-float(values[i]), i))
    return frozenset(order[:k])


def jaccard(a: frozenset[int] | set[int], b: frozenset[int] | set[int]) -> float:
    """|a ∩ b| / |a ∪ b|; 1.0 for two empty sets."""
    union = len(a | b)
    return 1.0 if union == 0 else len(a & b) / union


def rsim(layer_sets: Sequence[frozenset[int] | set[int]], *, anchor: int | None = None) -> float:
    """Mean pairwise Jaccard overlap of a group's layer sets (pairs with `anchor` only, when given)."""
    n = len(layer_sets)
    if n == 0:
        raise ValueError("empty group")
    if n == 1:
        return 1.0
    if anchor is not None:
        if not 0 <= anchor < n:
            raise ValueError(f"anchor {anchor} outside the group of {n}")
        pairs = [(anchor, j) for j in range(n) if j != anchor]
    else:
        pairs = list(combinations(range(n), 2))
    return sum(jaccard(layer_sets[i], layer_sets[j]) for i, j in pairs) / len(pairs)


def rsim_curve(
    group: Sequence[TraceResult],
    ks: Sequence[int],
    *,
    token: TokenChoice = "last_subject",
    anchor: int | None = None,
) -> list[float]:
    """RSim of one group of traces for each number of layers k in `ks` (KnowEdit Fig. 8's x-axis)."""
    scores = [layer_scores(r, token=token) for r in group]
    return [rsim([top_k_layers(s, k) for s in scores], anchor=anchor) for k in ks]


def mean_rsim_curve(
    groups: Sequence[Sequence[TraceResult]],
    ks: Sequence[int],
    *,
    token: TokenChoice = "last_subject",
    anchor: int | None = None,
) -> list[float]:
    """The mean over groups of `rsim_curve` (groups of one fact are skipped); NaN when none is left."""
    curves = [rsim_curve(g, ks, token=token, anchor=anchor) for g in groups if len(g) > 1]
    if not curves:
        return [float("nan")] * len(ks)
    return [sum(c[i] for c in curves) / len(curves) for i in range(len(ks))]
