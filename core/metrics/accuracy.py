"""Accuracy-style metrics on answer tokens and generated text (reliability, generalization, portability).

- Teacher-forced target-token accuracy: EasyEdit's `rewrite_acc`/`rephrase_acc`/portability
  (easyedit-notes §2.1, §2.3), mean_t 1[argmax_t == label_t].
- Greedy exact match: KnowEdit Eq. 10, 1{argmax_y f(y|x) = y*}, read on greedily decoded token ids.
- Greedy token accuracy: EasyEdit's GRACE path (position-wise match of a greedy generation of len(target)).
- SQuAD-normalised string EM: EasyEdit's LLM-eval fallback without a judge (easyedit-notes §2.7).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import torch

from core.metrics.protocols import (
    GREEDY_TOKEN_ACC,
    GREEDY_TOKEN_EM,
    SQUAD_STRING_EM,
    TEACHER_FORCED_TOKEN_ACC,
)
from core.types import MetricValue

Ids = Sequence[int] | torch.Tensor


def as_ids(x: Ids) -> torch.Tensor:
    """Token ids as a 1-D int64 CPU tensor."""
    t = torch.as_tensor(x, dtype=torch.long).detach().cpu()
    if t.dim() != 1:
        raise ValueError(f"expected a 1-D sequence of ids, got shape {tuple(t.shape)}")
    return t


def teacher_forced_token_acc(
    argmax_ids: Ids, label_ids: Ids, *, name: str = "rewrite_acc", timing: str = "unspecified"
) -> MetricValue:
    """Mean over answer tokens of 1[argmax == label]; both are read at the same teacher-forced positions."""
    pred, gold = as_ids(argmax_ids), as_ids(label_ids)
    if pred.shape != gold.shape or gold.numel() == 0:
        raise ValueError(f"need equal, non-empty lengths, got {pred.numel()} and {gold.numel()}")
    return MetricValue(name, (pred == gold).double().mean().item(), TEACHER_FORCED_TOKEN_ACC, timing)


def greedy_token_exact_match(
    generated_ids: Ids, target_ids: Ids, *, name: str = "edit_succ", timing: str = "unspecified"
) -> MetricValue:
    """1.0 iff the first len(target) generated ids equal the target ids (a longer generation is allowed)."""
    gen, gold = as_ids(generated_ids), as_ids(target_ids)
    if gold.numel() == 0:
        raise ValueError("empty target")
    hit = gen.numel() >= gold.numel() and bool(torch.equal(gen[: gold.numel()], gold))
    return MetricValue(name, float(hit), GREEDY_TOKEN_EM, timing)


def greedy_token_acc(
    generated_ids: Ids, target_ids: Ids, *, name: str = "rewrite_acc", timing: str = "unspecified"
) -> MetricValue:
    """Fraction of target positions j with generated_j == target_j; missing generated positions are wrong."""
    gen, gold = as_ids(generated_ids), as_ids(target_ids)
    if gold.numel() == 0:
        raise ValueError("empty target")
    n = min(gen.numel(), gold.numel())
    hits = (gen[:n] == gold[:n]).sum().item()
    return MetricValue(name, hits / gold.numel(), GREEDY_TOKEN_ACC, timing)


def squad_normalize(text: str) -> str:
    """SQuAD v1.1 answer normalisation: lowercase, drop punctuation and articles, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def squad_exact_match(
    prediction: str, reference: str, *, name: str = "rewrite_acc", timing: str = "unspecified"
) -> MetricValue:
    """1.0 iff squad_normalize(prediction) == squad_normalize(reference)."""
    return MetricValue(
        name, float(squad_normalize(prediction) == squad_normalize(reference)), SQUAD_STRING_EM, timing
    )
