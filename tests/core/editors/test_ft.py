"""FT-L / FT-M: loss closed forms, the L-inf constraint, reliability, padding, scope and failure safety."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from core.config import ConfigError, hparams_from_dict, load_hparams
from core.editors import ft
from core.editors.base import EncodedBatch, encode_prompt_target, forward_logits
from core.editors.ft import (
    FTHyperParams,
    apply_ft,
    apply_ft_l,
    apply_ft_m,
    ft_parameter_names,
    prompt_last_loss,
    target_new_loss,
)
from core.editors.partial import bottom_input, scored_logprobs, weighted_nll
from core.eval.evaluate import evaluate_requests
from core.eval.scoring import encode_answer
from tests.core.editors.conftest import assert_state_equal, clone_state, hparams_path, make_request


def _hp(method: str, arch: str, **changes) -> FTHyperParams:
    return dataclasses.replace(load_hparams(hparams_path(method, arch), FTHyperParams), **changes)


def _toy_batch() -> tuple[torch.Tensor, EncodedBatch]:
    torch.manual_seed(0)
    ids = torch.tensor([[0, 5, 6, 7, 8], [3, 4, 9, 2, 0]])  # row 1 right-padded by one token
    attn = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    tmask = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 1, 1, 0]], dtype=torch.bool)
    return torch.randn(2, 5, 11), EncodedBatch(ids, attn, tmask)


def test_prompt_last_loss_closed_form():
    logits, batch = _toy_batch()
    lp0, lp1 = F.log_softmax(logits[0, 2], -1), F.log_softmax(logits[1, 1], -1)  # last prompt positions
    expected = -((lp0[7] + lp0[8]) / 2 + (lp1[9] + lp1[2]) / 2) / 2
    torch.testing.assert_close(prompt_last_loss(logits, batch), expected)


def test_target_new_loss_is_masked_token_mean_cross_entropy():
    logits, batch = _toy_batch()
    labels = batch.input_ids.masked_fill(~batch.target_mask, -100)[:, 1:]
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, 11), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(target_new_loss(logits, batch), expected)


def test_encoding_matches_scoring_labels(tiny):
    _, tok = tiny
    prompts, targets = ["Alice Brown was born in", "Hugo Marsh"], ["Riga", "works as a poet."]
    for side in ("left", "right"):
        tok.padding_side = side
        batch = encode_prompt_target(tok, prompts, targets, "cpu")
        for row, p, t in zip(batch.target_ids(), prompts, targets, strict=True):
            enc = encode_answer(tok, p, t)
            assert row == list(enc.input_ids[enc.start : enc.end])


@pytest.mark.parametrize("objective", ["prompt_last", "target_new"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_scored_batch_loss_equals_the_full_batch_loss(tiny, objective, side):
    """The fast path (rows cut after the last scored token, LM head at scored positions only, blocks below
    the trained layer skipped) computes the same loss as the definition on full teacher-forced logits."""
    model, tok = tiny
    tok.padding_side = side
    requests = [make_request(i) for i in (0, 2, 4)]
    requests[1] = dataclasses.replace(requests[1], target_new="works as a poet")  # a multi-token target
    full = encode_prompt_target(tok, [r.prompt for r in requests], [r.target_new for r in requests], "cpu")
    with torch.no_grad():
        expected = ft._LOSSES[objective](forward_logits(model, full), full)
        fast = ft.ft_scored_batch(tok, requests, objective, "cpu")
        for layer in (0, 1):
            got = weighted_nll(scored_logprobs(model, fast, layer, bottom_input(model, fast, layer)), fast)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("eps", [1e-3, 2e-2])
def test_norm_constraint_bounds_every_entry(tiny, arch, eps):
    model, tok = tiny
    hp = _hp("FT-L", arch, norm_constraint=eps, lr=0.1)
    names = ft_parameter_names(model, hp)
    before = clone_state(model)
    apply_ft_l(model, tok, [make_request(0), make_request(1)], hp)
    params = dict(model.named_parameters())
    for n in names:
        delta = (params[n].double() - before[n].double()).abs().max().item()
        assert delta <= eps * (1 + 1e-5)
    assert max((params[n] - before[n]).abs().max().item() for n in names) > 0.5 * eps  # the clamp is active


def test_only_the_named_modules_change(tiny, arch):
    model, tok = tiny
    hp = _hp("FT-M", arch, layers=(1,))
    names = set(ft_parameter_names(model, hp))
    assert names == {n for n in names if ".1.mlp." in n} and names
    before = clone_state(model)
    apply_ft_m(model, tok, [make_request(2)], hp)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= names


def test_default_module_comes_from_the_arch(tiny, arch):
    model, _ = tiny
    hp = _hp("FT-M", arch, rewrite_module_tmp=None, layers=(0, 1))
    expected = {"gpt2": "transformer.h.{}.mlp.c_proj", "llama": "model.layers.{}.mlp.down_proj"}[arch]
    assert {n.rsplit(".", 1)[0] for n in ft_parameter_names(model, hp)} == {
        expected.format(i) for i in (0, 1)
    }


def test_ft_m_reaches_reliability_one(tiny, arch):
    model, tok = tiny
    req = dataclasses.replace(make_request(3), target_new="Lyon and Oslo")  # a short multi-token target
    undo = apply_ft_m(model, tok, [req], _hp("FT-M", arch))
    (metrics,) = evaluate_requests(model, tok, [req], pre=None, timing="after_own_edit")
    undo()
    assert {m.name: m.value for m in metrics}["reliability"] == 1.0


def test_left_and_right_padding_give_the_same_edit(tiny, arch):
    model, tok = tiny
    twin = copy.deepcopy(model)
    reqs = [make_request(2), make_request(5)]  # prompts of different lengths, one batch
    hp = _hp("FT-M", arch, batch_size=2)
    tok.padding_side = "left"
    apply_ft(model, tok, reqs, hp)
    tok.padding_side = "right"
    apply_ft(twin, tok, reqs, hp)
    for (n, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=n)


def test_objective_must_match_the_method(tiny, arch):
    model, tok = tiny
    with pytest.raises(ValueError, match="FT-L needs objective='prompt_last'"):
        apply_ft_l(model, tok, [make_request(0)], _hp("FT-M", arch))
    with pytest.raises(ValueError, match="FT-M needs objective='target_new'"):
        apply_ft_m(model, tok, [make_request(0)], _hp("FT-L", arch))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"lr": "5e-4"}, "lr must be a number"),  # PyYAML reads 5e-4 (no dot) as a string
        ({"objective": "prompt"}, "objective"),
        ({"layers": []}, "layers"),
        ({"batch_size": 0}, "batch_size"),
        ({"norm_constraint": -1.0}, "norm_constraint"),
        ({"rewrite_module_tmp": "transformer.h.mlp"}, "layer slot"),
    ],
)
def test_hparams_validation(change, match):
    raw = dataclasses.asdict(load_hparams(hparams_path("FT-L", "gpt2"), FTHyperParams))
    with pytest.raises(ConfigError, match=match):
        hparams_from_dict({**raw, **change}, FTHyperParams)


def test_failure_mid_edit_restores_the_model(tiny, arch, monkeypatch):
    model, tok = tiny
    before = clone_state(model)
    calls = []

    def flaky(logp, batch):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return weighted_nll(logp, batch)

    monkeypatch.setattr(ft, "weighted_nll", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        apply_ft_m(model, tok, [make_request(0)], _hp("FT-M", arch))
    assert_state_equal(model, before)
    assert all(p.requires_grad for p in model.parameters())
