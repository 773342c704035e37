"""Locality as agreement of the post-edit model with the pre-edit model (not correctness).

- `argmax_agreement`: EasyEdit/KnowEdit locality (easyedit-notes §2.2; KnowEdit Eq. 11 as computed
  by EasyEdit): mean_t 1[argmax_pre_t == argmax_post_t] over the teacher-forced answer positions of
  `loc_prompt + " " + loc_ground_truth`. The docs' example [29,234,334] vs [29,234,333] gives 0.6667.
  The ground truth is only teacher-forcing context, so a model equally wrong before and after scores 1.
- `exact_output_match`: WISE Eq. 9, Loc = 1(f_{Theta_T}(x_loc) = f_{Theta_0}(x_loc)): 1 iff the whole
  outputs (token ids or strings) are equal; also EasyEdit's LLM-eval locality on generated strings.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from core.metrics.accuracy import Ids, as_ids
from core.metrics.protocols import LOC_ARGMAX_AGREEMENT, LOC_EXACT_OUTPUT_MATCH
from core.types import MetricValue


def argmax_agreement(
    pre_ids: Ids, post_ids: Ids, *, name: str = "locality", timing: str = "unspecified"
) -> MetricValue:
    """Fraction of answer positions where pre- and post-edit argmax ids agree (equal, non-empty lengths)."""
    pre, post = as_ids(pre_ids), as_ids(post_ids)
    if pre.shape != post.shape or pre.numel() == 0:
        raise ValueError(f"need equal, non-empty lengths, got {pre.numel()} and {post.numel()}")
    return MetricValue(name, (pre == post).double().mean().item(), LOC_ARGMAX_AGREEMENT, timing)


def exact_output_match(
    pre_output: str | Sequence[int] | torch.Tensor,
    post_output: str | Sequence[int] | torch.Tensor,
    *,
    name: str = "locality",
    timing: str = "unspecified",
) -> MetricValue:
    """1.0 iff the whole post-edit output equals the whole pre-edit output (strings, or id sequences)."""
    if isinstance(pre_output, str) != isinstance(post_output, str):
        raise TypeError("compare a string with a string, or ids with ids")
    if isinstance(pre_output, str):
        same = pre_output == post_output
    else:
        a, b = as_ids(pre_output), as_ids(post_output)
        same = a.shape == b.shape and bool(torch.equal(a, b))
    return MetricValue(name, float(same), LOC_EXACT_OUTPUT_MATCH, timing)
