"""LoRA / AdaLoRA editing (core.editors.lora): in-place adapters, exact undo, seeded init, rank schedule."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from core.config import load_hparams
from core.editors.base import UndoError, chain_undos
from core.editors.lora import (
    ADAPTER,
    AdaLoRAHyperParams,
    LoRAHyperParams,
    apply_adalora,
    apply_lora,
    lora_target_names,
)
from core.eval.scoring import score_answers
from core.models.tiny import build_tiny_model
from tests.core.editors.conftest import assert_state_equal, clone_state, hparams_path, make_request

KINDS = {"LoRA": LoRAHyperParams, "AdaLoRA": AdaLoRAHyperParams}


def _hp(kind: str, arch: str, **changes):
    hp = load_hparams(hparams_path(kind, arch), KINDS[kind])
    return dataclasses.replace(hp, **changes) if changes else hp


def _tree(model):
    return [(n, type(m), id(m)) for n, m in model.named_modules()]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_edit_moves_target_and_undo_restores_tree_and_weights(kind, arch, tiny):
    model, tok = tiny
    state, tree, attrs = clone_state(model), _tree(model), set(vars(model))
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    req = make_request(0)
    (pre,) = score_answers(model, tok, [req.prompt], [req.target_new])
    undo = apply_lora(model, tok, [req], _hp(kind, arch))
    assert any(ADAPTER in n for n, _ in model.named_parameters())  # adapters live in the held model
    (post,) = score_answers(model, tok, [req.prompt], [req.target_new])
    assert torch.equal(post.argmax_ids, post.label_ids)
    assert post.logprobs.sum() > pre.logprobs.sum() + 0.3
    undo()
    assert _tree(model) == tree
    assert set(vars(model)) == attrs  # peft_config removed
    assert_state_equal(model, state)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    (again,) = score_answers(model, tok, [req.prompt], [req.target_new])
    assert torch.equal(again.logprobs, pre.logprobs)
    with pytest.raises(UndoError):
        undo()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_base_weights_never_change_and_runs_are_deterministic(kind, arch, tiny):
    model, tok = tiny
    twin = copy.deepcopy(model)
    base = {id(p): p.detach().clone() for p in model.parameters()}
    reqs = [make_request(3), make_request(4)]
    apply_lora(model, tok, reqs, _hp(kind, arch))
    apply_lora(twin, tok, reqs, _hp(kind, arch))
    for p in model.parameters():
        if id(p) in base:
            assert torch.equal(p, base[id(p)])
    assert_state_equal(twin, clone_state(model))  # seeded init and deterministic training


def test_sequential_edits_continue_the_adapter_and_unwind(arch, tiny):
    model, tok = tiny
    state, tree = clone_state(model), _tree(model)
    hp = _hp("LoRA", arch, num_steps=5)
    undos, snaps = [], []
    for i in range(3):
        undos.append(apply_lora(model, tok, [make_request(i)], hp))
        snaps.append(clone_state(model))
    assert snaps[1].keys() == snaps[2].keys()  # one adapter, trained further
    assert any(not torch.equal(snaps[2][n], snaps[1][n]) for n in snaps[2])
    undos[-1]()
    assert_state_equal(model, snaps[1])
    chain_undos(undos[:-1])()
    assert _tree(model) == tree
    assert_state_equal(model, state)


def test_layers_select_targets_and_validation():
    model, _ = build_tiny_model("gpt2")
    hp = _hp("LoRA", "gpt2", layers=(1,))
    assert lora_target_names(model, hp) == ["transformer.h.1.attn.c_attn"]
    assert len(lora_target_names(model, _hp("LoRA", "gpt2"))) == 2  # [] = every layer
    with pytest.raises(KeyError, match="no module"):
        lora_target_names(model, _hp("LoRA", "gpt2", target_modules=("transformer.h.{}.nope",)))
    with pytest.raises(ValueError, match="layer slot"):
        _hp("LoRA", "gpt2", target_modules=("c_attn",))
    with pytest.raises(ValueError, match="target_r"):
        _hp("AdaLoRA", "gpt2", rank=4)
    with pytest.raises(ValueError, match="init_r"):
        _hp("AdaLoRA", "gpt2", target_r=16, rank=16)
    with pytest.raises(TypeError, match="AdaLoRAHyperParams"):
        apply_adalora(model, None, [make_request(0)], _hp("LoRA", "gpt2"))


def test_adalora_rank_allocation_prunes_to_budget():
    model, tok = build_tiny_model("gpt2")
    hp = _hp("AdaLoRA", "gpt2", num_steps=6, init_r=6, target_r=2, rank=2, tinit=1, tfinal=2)
    undo = apply_lora(model, tok, [make_request(0)], hp)
    pattern = model.peft_config[ADAPTER].rank_pattern
    kept = sum(int(torch.as_tensor(m).sum()) for m in pattern.values())
    assert kept == 2 * len(pattern)  # budget target_r per matrix on average
    e = [p for n, p in model.named_parameters() if "lora_E" in n]
    assert sum(int((t != 0).sum()) for t in e) <= kept
    undo()


def test_adalora_without_allocation_keeps_init_rank():
    model, tok = build_tiny_model("gpt2")
    undo = apply_lora(
        model, tok, [make_request(0)], _hp("AdaLoRA", "gpt2", rank_allocation=False, num_steps=3)
    )
    assert not model.peft_config[ADAPTER].rank_pattern
    e = [p for n, p in model.named_parameters() if "lora_E" in n]
    assert all(t.shape[0] == 12 and bool((t != 0).all()) for t in e)
    undo()
