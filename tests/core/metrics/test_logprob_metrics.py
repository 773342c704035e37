"""Golden numbers for perplexity, WISE delta-accuracy and the ConvSent metrics on hand-made log-probs."""

from __future__ import annotations

import math

import pytest
import torch

from core.metrics import DELTA, convsent_edit_success, delta_accuracy, kl_drawdown, target_perplexity
from core.metrics import protocols as P

ln = math.log


def lp(*probs: float) -> torch.Tensor:
    return torch.tensor([ln(p) for p in probs], dtype=torch.float64)


def test_target_perplexity():
    mv = target_perplexity(lp(0.5, 0.25))  # mean NLL = 1.5 ln 2
    assert mv.value == pytest.approx(2**1.5)
    assert (mv.name, mv.protocol) == ("rewrite_ppl", P.TARGET_PPL)
    assert target_perplexity(lp(0.5, 0.25), clip=2.0).value == 2.0
    assert target_perplexity(torch.tensor([-10.0]), clip=100.0).value == 100.0
    assert target_perplexity(torch.tensor([-10.0])).value == pytest.approx(math.exp(10))


def test_target_perplexity_rejects_bad_input():
    with pytest.raises(ValueError):
        target_perplexity(torch.tensor([]))
    with pytest.raises(ValueError):
        target_perplexity(torch.tensor([0.5]))  # a probability, not a log-probability


def test_delta_accuracy_strict_threshold():
    assert DELTA == pytest.approx(0.22314355)
    mv = delta_accuracy(lp(0.9, 0.8, 0.5, 0.85))  # p = 0.8 sits on the threshold and fails (strict <)
    assert mv.value == pytest.approx(0.5)
    assert (mv.name, mv.protocol) == ("ood_acc", P.OOD_DELTA_ACC)
    assert delta_accuracy(lp(0.5), delta=ln(1 / 0.4)).value == 1.0


@pytest.mark.parametrize(
    ("post_t", "post_o", "pre_t", "es", "z_sent", "z_topic"),
    [
        ([lp(0.5, 0.5)], [lp(0.25)], [lp(0.25, 0.25)], 2 / 3, 2 / 3, 1.0),  # z_topic clipped at 1
        ([lp(0.5, 0.5)], [lp(0.25)], [lp(0.8, 0.8)], 2 / 3 * 0.625, 2 / 3, 0.625),
        # identical pre and post: z_topic = 1, what the reference always reports (its defect)
        ([lp(0.5)], [lp(0.5)], [lp(0.5)], 0.5, 0.5, 1.0),
    ],
)
def test_convsent_edit_success(post_t, post_o, pre_t, es, z_sent, z_topic):
    vals = convsent_edit_success(post_t, post_o, pre_t, timing="post")
    assert [v.name for v in vals] == ["es", "z_sent", "z_topic"]
    assert [v.value for v in vals] == pytest.approx([es, z_sent, z_topic])
    assert {v.protocol for v in vals} == {P.CONVSENT_ES}


def test_convsent_means_are_pooled_over_tokens():
    # pooled: (-1 - 1 - 3)/3 ln2 = -5/3 ln2; a mean of per-answer means would give -1.5 ln2
    post_t = [lp(0.5), lp(0.5, 0.125)]
    vals = convsent_edit_success(post_t, [lp(0.5)], post_t)
    assert vals[1].value == pytest.approx(1 / (1 + math.exp(-(-5 / 3 * ln(2) - ln(0.5)))))
    with pytest.raises(ValueError):
        convsent_edit_success(post_t, [lp(0.5)], [lp(0.5)])


def test_kl_drawdown():
    pre = [torch.tensor([[0.0, 0.0], [1.0, 2.0]])]  # token 1: p = (.5, .5)
    post = [torch.tensor([[ln(3), 0.0], [1.0, 2.0]])]  # token 1: q = (.75, .25); token 2 unchanged
    mv = kl_drawdown(pre, post)
    assert mv.value == pytest.approx(0.5 * ln(4 / 3) / 2)  # KL(p||q) = 0.5 ln(4/3), pooled over 2 tokens
    assert (mv.name, mv.protocol) == ("dd", P.CONVSENT_KL_DRAWDOWN)
    assert kl_drawdown(pre, pre).value == pytest.approx(0.0)  # what the reference always reports


def test_kl_drawdown_direction_and_shapes():
    p, q = torch.tensor([[0.0, 0.0]]), torch.tensor([[ln(3), 0.0]])
    assert kl_drawdown([q], [p]).value == pytest.approx(0.75 * ln(1.5) + 0.25 * ln(0.5))  # KL(q||p)
    with pytest.raises(ValueError):
        kl_drawdown([p], [torch.zeros(2, 2)])
