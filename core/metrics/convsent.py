"""ConvSent metrics: edit success z_sent * z_topic (KnowEdit Eq. 12) and KL drawdown (KnowEdit Eq. 13).

Follows EasyEdit `evaluate_utils.es` and `kl_loc_loss` (easyedit-notes §2.5). All means are pooled
over tokens (masked means), not means of per-answer means:
- z_sent  = sigmoid(mean_{target-sentiment tokens} log p_post - mean_{other-sentiment tokens} log p_post)
- z_topic = min(1, exp(mean_{target-sentiment tokens} log p_post - mean_{same tokens} log p_pre))
- es      = z_sent * z_topic
- drawdown = sum_t KL(p_pre,t || p_post,t) / #tokens over another topic's answer tokens (lower is better).

Inputs are per-answer tensors from `core.eval.scoring` (token log-probs, or full logits at the answer
positions). The pre-edit values MUST be captured before the edit is applied: EasyEdit compares the
in-place-edited model with itself, which forces z_topic = 1 and drawdown = 0 (its defect).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from core.metrics.protocols import CONVSENT_ES, CONVSENT_KL_DRAWDOWN
from core.types import MetricValue


def _pool(parts: Sequence[torch.Tensor], what: str) -> torch.Tensor:
    flat = [torch.as_tensor(p, dtype=torch.float64).detach().cpu().reshape(-1) for p in parts]
    pooled = torch.cat(flat) if flat else torch.empty(0, dtype=torch.float64)
    if pooled.numel() == 0:
        raise ValueError(f"no tokens in {what}")
    return pooled


def convsent_edit_success(
    post_target: Sequence[torch.Tensor],
    post_other: Sequence[torch.Tensor],
    pre_target: Sequence[torch.Tensor],
    *,
    timing: str = "unspecified",
) -> list[MetricValue]:
    """[es, z_sent, z_topic] from per-answer token log-probs (target = answers with the target sentiment).

    `post_target[i]` and `pre_target[i]` score the same answer tokens after and before the edit.
    """
    if [len(torch.as_tensor(a).reshape(-1)) for a in post_target] != [
        len(torch.as_tensor(b).reshape(-1)) for b in pre_target
    ]:
        raise ValueError("pre and post log-probs must cover the same target-sentiment tokens")
    pos_post = _pool(post_target, "post_target").mean()
    neg_post = _pool(post_other, "post_other").mean()
    pos_pre = _pool(pre_target, "pre_target").mean()
    z_sent = torch.sigmoid(pos_post - neg_post).item()
    z_topic = min(1.0, torch.exp(pos_post - pos_pre).item())
    return [
        MetricValue("es", z_sent * z_topic, CONVSENT_ES, timing),
        MetricValue("z_sent", z_sent, CONVSENT_ES, timing),
        MetricValue("z_topic", z_topic, CONVSENT_ES, timing),
    ]


def kl_drawdown(
    pre_logits: Sequence[torch.Tensor],
    post_logits: Sequence[torch.Tensor],
    *,
    name: str = "dd",
    timing: str = "unspecified",
) -> MetricValue:
    """Token-pooled mean KL(p_pre || p_post); each item is (T_i, V) logits at one answer's positions."""
    if len(pre_logits) != len(post_logits) or not pre_logits:
        raise ValueError("need the same, non-zero number of pre and post answers")
    total, count = 0.0, 0
    for pre, post in zip(pre_logits, post_logits, strict=True):
        if pre.shape != post.shape or pre.dim() != 2:
            raise ValueError(f"need equal (T, V) shapes, got {tuple(pre.shape)} and {tuple(post.shape)}")
        lp_pre = F.log_softmax(pre.detach().double().cpu(), -1)  # (T, V)
        lp_post = F.log_softmax(post.detach().double().cpu(), -1)
        total += (lp_pre.exp() * (lp_pre - lp_post)).sum().item()
        count += pre.shape[0]
    if count == 0:
        raise ValueError("no tokens")
    return MetricValue(name, total / count, CONVSENT_KL_DRAWDOWN, timing)
