"""Sanitation metrics (KnowEdit §3.5, EasyEdit `examples/run_santinization_llama2.py`; easyedit-notes §2.6).

- Edit success: the fraction of generations on the forget set that contain `target_new`
  ("I don't know."), case-insensitive substring. EasyEdit searches the decoded text *including* the
  prompt template "Question:{q}\\nAnswer:"; pass continuations (our generation results) so the prompt
  can never produce a hit.
- Locality: before editing the model's own generations on the retain set replace the ground truth;
  after editing, per item #{i : post_i == pre_i} / len(pre tokens), compared position by position over
  the common prefix length (a mismatch does not stop the count; extra post tokens are ignored), then
  averaged over items. An empty pre generation scores 1.0 iff the post generation is empty too (the
  reference would divide by zero).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.metrics.protocols import SANITATION_POSITION_MATCH, SANITATION_SUBSTRING_SUCCESS
from core.types import MetricValue

DONT_KNOW = "I don't know."


def sanitation_success(
    generations: Sequence[str],
    target_new: str = DONT_KNOW,
    *,
    name: str = "edit_succ",
    timing: str = "unspecified",
) -> MetricValue:
    """Fraction of generations containing `target_new` (case-insensitive substring)."""
    if isinstance(generations, str) or not generations:
        raise ValueError("pass a non-empty sequence of generations")
    needle = target_new.lower()
    hits = sum(needle in g.lower() for g in generations)
    return MetricValue(name, hits / len(generations), SANITATION_SUBSTRING_SUCCESS, timing)


def position_match(pre_tokens: Sequence, post_tokens: Sequence) -> float:
    """#{i < min(len): post_i == pre_i} / len(pre_tokens) for one item (tokens: ids or strings)."""
    if len(pre_tokens) == 0:
        return float(len(post_tokens) == 0)
    return sum(a == b for a, b in zip(pre_tokens, post_tokens, strict=False)) / len(pre_tokens)


def _as_list(tokens: Sequence) -> list:
    return tokens.tolist() if hasattr(tokens, "tolist") else list(tokens)


def sanitation_locality(
    pre_tokens: Sequence[Sequence],
    post_tokens: Sequence[Sequence],
    *,
    name: str = "locality",
    timing: str = "unspecified",
) -> MetricValue:
    """Mean over items of `position_match(pre_i, post_i)` on the generated (prompt-stripped) tokens."""
    if len(pre_tokens) != len(post_tokens) or not pre_tokens:
        raise ValueError("need the same, non-zero number of pre and post generations")
    vals = [position_match(_as_list(a), _as_list(b)) for a, b in zip(pre_tokens, post_tokens, strict=True)]
    return MetricValue(name, sum(vals) / len(vals), SANITATION_POSITION_MATCH, timing)
