"""Golden numbers of the RSim layer-overlap analysis (KnowEdit §5, Fig. 8) on hand-made layer sets."""

from __future__ import annotations

import pytest
import torch

from core.locate import TraceResult, jaccard, layer_scores, mean_rsim_curve, rsim, rsim_curve, top_k_layers


def _trace(last_subject_effect: list[float], corrupted: float = 0.0) -> TraceResult:
    """A trace over 3 tokens (subject [0, 2)) whose last-subject-token column is the given effect."""
    col = torch.tensor(last_subject_effect) + corrupted
    restored = torch.stack([torch.zeros_like(col), col, torch.full_like(col, 0.5)], dim=1)  # (n_layers, 3)
    return TraceResult(
        prompt="p", subject="s", answer="a", tokens=("a", "b", "c"), subject_range=(0, 2), answer_ids=(0,),
        kind="mlp", severed=None, window=1, noise_std=1.0, clean_prob=1.0, corrupted_prob=corrupted,
        restored=restored,
    )


def test_jaccard_and_rsim_golden():
    a, b, c = frozenset({0, 1, 2}), frozenset({1, 2, 3}), frozenset({4})
    assert jaccard(a, b) == pytest.approx(2 / 4)
    assert jaccard(a, c) == 0.0 and jaccard(frozenset(), frozenset()) == 1.0
    assert rsim([a, b, c]) == pytest.approx((0.5 + 0.0 + 0.0) / 3)
    assert rsim([a, b, c], anchor=0) == pytest.approx((0.5 + 0.0) / 2)
    assert rsim([a]) == 1.0
    with pytest.raises(ValueError):
        rsim([])


def test_top_k_layers_ties_go_to_lower_layer():
    assert top_k_layers([0.1, 0.5, 0.5, 0.2], 2) == frozenset({1, 2})
    assert top_k_layers([0.3, 0.3, 0.3, 0.3], 2) == frozenset({0, 1})
    assert top_k_layers(torch.tensor([0.0, -1.0, 2.0]), 1) == frozenset({2})
    with pytest.raises(ValueError):
        top_k_layers([0.1, 0.2], 3)


def test_layer_scores_reads_last_subject_token_or_max():
    t = _trace([0.1, 0.4, 0.2], corrupted=0.1)
    torch.testing.assert_close(layer_scores(t), torch.tensor([0.1, 0.4, 0.2]))
    torch.testing.assert_close(layer_scores(t, token="max"), torch.tensor([0.4, 0.4, 0.4]))


def test_rsim_curve_golden():
    group = [_trace([0.9, 0.8, 0.1, 0.0]), _trace([0.9, 0.1, 0.8, 0.0]), _trace([0.0, 0.1, 0.8, 0.9])]
    # k=1: {0},{0},{3} -> (1 + 0 + 0) / 3; k=2: {0,1},{0,2},{2,3} -> (1/3 + 0 + 1/3) / 3; k=4: all equal
    assert rsim_curve(group, [1, 2, 4]) == pytest.approx([1 / 3, 2 / 9, 1.0])
    assert rsim_curve(group, [2], anchor=0) == pytest.approx([(1 / 3 + 0) / 2])
    mean = mean_rsim_curve([group, group[:2], group[:1]], [1, 2])
    assert mean == pytest.approx([(1 / 3 + 1) / 2, (2 / 9 + 1 / 3) / 2])  # the one-fact group is skipped
