"""SERAC edit memory: closed-form scope probabilities, newest-wins lookup, LIFO push/pop."""

from __future__ import annotations

import math

import pytest
import torch

from core.memory.edit_memory import EditDescriptor, EditMemory, EditMemoryError, scope_probabilities


def _desc(i: int) -> EditDescriptor:
    return EditDescriptor(f"case{i}", f"prompt {i}", f"target {i}", f"prompt {i} target {i}", (i, 2))


def test_scope_probabilities_closed_form():
    q = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    k = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 1.0]])
    p = scope_probabilities(q, k)
    expected = torch.tensor(
        [[1.0, math.exp(-1.0), math.exp(-10.0)], [math.exp(-2.0), math.exp(-1.0), math.exp(-4.0)]]
    )
    assert p.shape == (2, 3)
    assert torch.allclose(p, expected)


def test_lookup_returns_best_edit_and_newest_on_ties():
    mem = EditMemory(2)
    mem.push([_desc(0), _desc(1)], torch.tensor([[0.0, 0.0], [5.0, 5.0]]))
    mem.push([_desc(2)], torch.tensor([[0.0, 0.0]]))  # same key as edit 0: the newer one wins
    prob, idx = mem.lookup(torch.tensor([[0.0, 0.0], [5.0, 4.0], [100.0, 100.0]]))
    assert idx.tolist() == [2, 1, 2]  # last row: every probability underflows to 0, a tie -> newest
    assert prob[0] == 1.0 and math.isclose(prob[1].item(), math.exp(-1.0), rel_tol=1e-6)
    assert prob[2] == 0.0


def test_push_pop_is_a_stack():
    mem = EditMemory(2)
    first = mem.push([_desc(0)], torch.zeros(1, 2))
    second = mem.push([_desc(1), _desc(2)], torch.ones(2, 2))
    assert len(mem) == 3 and mem.keys.shape == (3, 2)
    with pytest.raises(EditMemoryError):
        mem.pop(first)  # not the last pushed entries
    mem.pop(second)
    assert mem.descriptors == first and torch.equal(mem.keys, torch.zeros(1, 2))
    mem.pop(first)
    assert len(mem) == 0
    with pytest.raises(EditMemoryError):
        mem.lookup(torch.zeros(1, 2))


def test_push_checks_key_shape():
    mem = EditMemory(3)
    with pytest.raises(ValueError, match="shape"):
        mem.push([_desc(0)], torch.zeros(1, 2))
    with pytest.raises(ValueError, match="nothing"):
        mem.push([], torch.zeros(0, 3))
