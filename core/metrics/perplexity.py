"""Perplexity of a target continuation and WISE's temporal OOD delta-accuracy, from per-token log-probs.

- `target_perplexity`: EasyEdit `eval_metric='ppl'` (WISE hallucination Rel., Table 4):
  PPL = exp(mean_t NLL_t) over the target tokens given the prompt. `clip` (default None) applies
  min(PPL, clip). papers.md §1.4 Table 4 prints values far above 100 (1594.93, 23114.94), so the
  WISE numbers are NOT clipped; the option exists for robust averages. (Mistral FT-L T=10 reads
  exactly 100.00, which may hint at a clip there; unconfirmed.)
- `delta_accuracy`: WISE Eq. 10, the mean of 1(NLL_t < delta) with delta = -log(0.8), i.e. p_t > 0.8.
  EasyEdit's `ood_ppl` scores only the *prompt* tokens (the target is ignored), counts masked positions
  as NLL 0 (they pass), and stores rewrite and rephrase under the same key so the rephrase value
  overwrites the rewrite one (easyedit-notes §2.1; defects). Here we score exactly the positions we are
  given, normally the y_ood continuation positions from `core.eval.scoring.score_answers`, with no
  padding in the denominator, and callers name the rewrite and OOD values separately.
"""

from __future__ import annotations

import math

import torch

from core.metrics.protocols import OOD_DELTA_ACC, TARGET_PPL
from core.types import MetricValue

DELTA = -math.log(0.8)  # WISE Eq. 10


def _logprobs(token_logprobs: torch.Tensor) -> torch.Tensor:
    lp = torch.as_tensor(token_logprobs, dtype=torch.float64).detach().cpu().reshape(-1)
    if lp.numel() == 0:
        raise ValueError("no scored positions")
    if bool((lp > 1e-6).any()):
        raise ValueError("log-probabilities must be <= 0")
    return lp


def target_perplexity(
    token_logprobs: torch.Tensor,
    *,
    clip: float | None = None,
    name: str = "rewrite_ppl",
    timing: str = "unspecified",
) -> MetricValue:
    """exp(-mean log p_t) over the target tokens; min(., clip) when `clip` is set."""
    ppl = math.exp(-_logprobs(token_logprobs).mean().item())
    if clip is not None:
        ppl = min(ppl, clip)
    return MetricValue(name, ppl, TARGET_PPL, timing)


def delta_accuracy(
    token_logprobs: torch.Tensor, *, delta: float = DELTA, name: str = "ood_acc", timing: str = "unspecified"
) -> MetricValue:
    """Fraction of the given positions with NLL_t = -log p_t < delta (default -log 0.8)."""
    nll = -_logprobs(token_logprobs)
    return MetricValue(name, (nll < delta).double().mean().item(), OOD_DELTA_ACC, timing)
