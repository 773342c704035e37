"""Undo semantics (once only, reverse-order chains, bit-exact), module lookup and padded encodings."""

from __future__ import annotations

import pytest
import torch

from core.editors.base import (
    Undo,
    UndoError,
    chain_undos,
    encode_prompt_target,
    forward_logits,
    module_parameter_names,
    resolve_module_name,
    snapshot_parameters,
)
from tests.core.editors.conftest import assert_state_equal, clone_state


def test_undo_runs_once_and_reports_state():
    calls = []
    undo = Undo(lambda: calls.append(1), "demo")
    assert not undo.applied and "pending" in repr(undo)
    undo()
    assert calls == [1] and undo.applied
    with pytest.raises(UndoError, match="demo"):
        undo()


def test_chain_undoes_last_first():
    order = []
    chain = chain_undos([Undo(lambda i=i: order.append(i)) for i in range(3)])
    chain()
    assert order == [2, 1, 0]


def test_snapshot_restores_stacked_changes_bit_exactly(tiny):
    model, _ = tiny
    state = clone_state(model)
    name = next(n for n, _ in model.named_parameters())
    param = dict(model.named_parameters())[name]
    u1 = snapshot_parameters(model, [name])
    with torch.no_grad():
        param.mul_(1.0001)  # a change that is not exactly reversible in float arithmetic
    u2 = snapshot_parameters(model, [name])
    with torch.no_grad():
        param.add_(0.1)
    chain_undos([u1, u2])()
    assert_state_equal(model, state)


def test_snapshot_rejects_unknown_names(tiny):
    model, _ = tiny
    with pytest.raises(KeyError, match="no parameter"):
        snapshot_parameters(model, ["not.a.parameter"])


def test_resolve_module_name(tiny, arch):
    model, _ = tiny
    name = resolve_module_name(model, None, 1)
    assert name == {"gpt2": "transformer.h.1.mlp.c_proj", "llama": "model.layers.1.mlp.down_proj"}[arch]
    assert module_parameter_names(model, name)[0] == f"{name}.weight"
    with pytest.raises(KeyError, match="no module"):
        resolve_module_name(model, "model.blocks.{}.ffn", 0)


def test_left_and_right_padded_batches_give_the_same_logits(tiny):
    model, tok = tiny
    prompts, targets = ["Alice Brown was born in", "Hugo Marsh works"], ["Riga", "as a judge"]
    rows = {}
    for side in ("left", "right"):
        tok.padding_side = side
        batch = encode_prompt_target(tok, prompts, targets, "cpu")
        with torch.no_grad():
            logits = forward_logits(model, batch)
        rows[side] = [logits[b][batch.attention_mask[b].bool()] for b in range(2)]
        assert batch.target_ids()[0] == tok(" Riga", add_special_tokens=False)["input_ids"]
    for a, b in zip(rows["left"], rows["right"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
