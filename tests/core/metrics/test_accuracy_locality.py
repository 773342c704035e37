"""Golden numbers for token accuracy, exact match and locality agreement on hand-made ids and strings."""

from __future__ import annotations

import pytest
import torch

from core.metrics import (
    argmax_agreement,
    exact_output_match,
    greedy_token_acc,
    greedy_token_exact_match,
    squad_exact_match,
    squad_normalize,
    teacher_forced_token_acc,
)
from core.metrics import protocols as P


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [([1, 2, 3, 4], [1, 2, 0, 4], 0.75), ([7], [7], 1.0), ([7, 8], [8, 7], 0.0)],
)
def test_teacher_forced_token_acc(pred, gold, expected):
    mv = teacher_forced_token_acc(pred, gold, name="rewrite_acc", timing="t")
    assert mv.value == pytest.approx(expected)
    assert (mv.name, mv.protocol, mv.timing) == ("rewrite_acc", P.TEACHER_FORCED_TOKEN_ACC, "t")


def test_teacher_forced_token_acc_accepts_tensors_and_rejects_mismatch():
    assert teacher_forced_token_acc(torch.tensor([3, 4]), torch.tensor([3, 5])).value == 0.5
    with pytest.raises(ValueError):
        teacher_forced_token_acc([1, 2], [1])
    with pytest.raises(ValueError):
        teacher_forced_token_acc([], [])


@pytest.mark.parametrize(
    ("gen", "gold", "em", "acc"),
    [
        ([5, 6, 7], [5, 6], 1.0, 1.0),  # a longer generation still matches its prefix
        ([5, 7, 8], [5, 6, 8], 0.0, 2 / 3),
        ([5], [5, 6], 0.0, 0.5),  # a short generation counts missing positions as wrong
        ([], [5], 0.0, 0.0),
    ],
)
def test_greedy_exact_match_and_token_acc(gen, gold, em, acc):
    assert greedy_token_exact_match(gen, gold).value == em
    assert greedy_token_exact_match(gen, gold).protocol == P.GREEDY_TOKEN_EM
    assert greedy_token_acc(gen, gold).value == pytest.approx(acc)
    assert greedy_token_acc(gen, gold).protocol == P.GREEDY_TOKEN_ACC


@pytest.mark.parametrize(
    ("pred", "ref", "expected"),
    [
        ("The  Paris!", "paris", 1.0),
        ("an apple.", "Apple", 1.0),
        ("Paris France", "Paris", 0.0),
        ("", "", 1.0),
    ],
)
def test_squad_exact_match(pred, ref, expected):
    mv = squad_exact_match(pred, ref)
    assert (mv.value, mv.protocol) == (expected, P.SQUAD_STRING_EM)


def test_squad_normalize():
    assert squad_normalize("  The Eiffel-Tower, in A city ") == "eiffeltower in city"


def test_argmax_agreement_easyedit_doc_example():
    mv = argmax_agreement([29, 234, 334], [29, 234, 333], name="Relation_Specificity_acc")
    assert mv.value == pytest.approx(0.6667, abs=1e-4)
    assert mv.protocol == P.LOC_ARGMAX_AGREEMENT
    with pytest.raises(ValueError):
        argmax_agreement([1, 2], [1, 2, 3])


@pytest.mark.parametrize(
    ("pre", "post", "expected"),
    [
        ("Paris", "Paris", 1.0),
        ("Paris", "Paris.", 0.0),
        ([1, 2], [1, 2], 1.0),
        ([1, 2], [1, 2, 3], 0.0),  # whole outputs, not prefixes
        (torch.tensor([4, 5]), [4, 5], 1.0),
    ],
)
def test_exact_output_match(pre, post, expected):
    mv = exact_output_match(pre, post)
    assert (mv.value, mv.protocol) == (expected, P.LOC_EXACT_OUTPUT_MATCH)


def test_exact_output_match_rejects_mixed_types():
    with pytest.raises(TypeError):
        exact_output_match("1 2", [1, 2])
