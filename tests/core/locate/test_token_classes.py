"""ROME Fig. 2 token classes on hand-made spans and golden averages over hand-made traces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.locate import TOKEN_CLASSES, TraceResult, average_indirect_effect, token_class_positions


def _result(restored: list[list[float]], span: tuple[int, int], corrupted: float, clean: float = 1.0):
    r = torch.tensor(restored)
    return TraceResult(
        prompt="p", subject="s", answer="a", tokens=tuple(f"t{i}" for i in range(r.shape[1])),
        subject_range=span,
        answer_ids=(0,), kind="hidden", severed=None, window=1, noise_std=1.0, clean_prob=clean,
        corrupted_prob=corrupted, restored=r,
    )


@pytest.mark.parametrize(
    ("span", "n", "expected"),
    [
        ((1, 4), 8, ([1], [2], [3], [4], [5, 6], [7])),  # prefix, 3 subject tokens, 4 after
        ((0, 1), 3, ([0], [], [0], [1], [], [2])),  # one-token subject: first = last subject token
        ((2, 4), 5, ([2], [], [3], [4], [], [4])),  # one token after: first subsequent = last
        ((1, 3), 3, ([1], [], [2], [], [], [2])),  # the prompt ends with its subject
    ],
)
def test_token_class_positions(span, n, expected):
    assert tuple(token_class_positions(span, n).values()) == expected
    assert tuple(token_class_positions(span, n)) == TOKEN_CLASSES


def test_token_class_positions_rejects_bad_span():
    with pytest.raises(ValueError):
        token_class_positions((2, 5), 4)


def test_average_indirect_effect_golden():
    # fact A: 5 tokens, subject [1, 3); fact B: 4 tokens, subject [0, 3); two layers each
    a = _result([[0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0]], (1, 3), corrupted=0.1)
    b = _result([[0.2, 0.4, 0.6, 0.8], [0.3, 0.5, 0.7, 0.9]], (0, 3), corrupted=0.2, clean=0.5)
    avg = average_indirect_effect([a, b])
    assert avg.counts.tolist() == [2, 1, 2, 2, 0, 2]  # no fact has a token between first subsequent and last
    # first subject: a col 1 (0.2, 0.7) - 0.1 and b col 0 (0.2, 0.3) - 0.2
    np.testing.assert_allclose(avg.row("first_subject"), [(0.1 + 0.0) / 2, (0.6 + 0.1) / 2])
    np.testing.assert_allclose(avg.row("middle_subject"), [0.4 - 0.2, 0.5 - 0.2])  # b col 1 only
    np.testing.assert_allclose(avg.row("last_subject"), [(0.2 + 0.4) / 2, (0.7 + 0.5) / 2])  # a 2, b 2
    np.testing.assert_allclose(avg.row("first_subsequent"), [(0.3 + 0.6) / 2, (0.8 + 0.7) / 2])  # a 3, b 3
    assert np.isnan(avg.row("further")).all()
    np.testing.assert_allclose(avg.row("last"), [(0.4 + 0.6) / 2, (0.9 + 0.7) / 2])  # a col 4, b col 3
    np.testing.assert_allclose(avg.restored[TOKEN_CLASSES.index("last")], [(0.5 + 0.8) / 2, (1.0 + 0.9) / 2])
    assert avg.clean_prob == pytest.approx(0.75) and avg.corrupted_prob == pytest.approx(0.15)
    assert avg.n_facts == 2


def test_empty_class_is_nan_and_kinds_must_match():
    a = _result([[0.1, 0.2, 0.3]], (0, 1), corrupted=0.0)
    avg = average_indirect_effect([a])
    assert avg.counts[TOKEN_CLASSES.index("middle_subject")] == 0
    assert np.isnan(avg.row("middle_subject")).all()
    other = TraceResult(**{**a.__dict__, "kind": "mlp"})
    with pytest.raises(ValueError):
        average_indirect_effect([a, other])
    with pytest.raises(ValueError):
        average_indirect_effect([])
