"""KN: integrated gradients (Eq. 4) against its completeness axiom and a step-by-step loop, neuron
selection on hand-made attributions, the value-vector update in closed form, and the edit's footprint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from core.config import ConfigError, load_hparams
from core.editors.kn import (
    KNHyperParams,
    apply_kn,
    integrated_gradients,
    kn_layers,
    kn_neurons,
    select_neurons,
    update_value_vectors,
)
from core.eval.scoring import encode_answer
from core.models.arch import get_arch, weight_view
from tests.core.editors.conftest import assert_state_equal, clone_state, hparams_path, make_request

PAPER_HPARAMS = sorted((Path(__file__).parents[3] / "papers/knowedit/hparams/KN").glob("*.yaml"))


def _hp(arch: str, **changes) -> KNHyperParams:
    return dataclasses.replace(load_hparams(hparams_path("KN", arch), KNHyperParams), **changes)


def _answer_prob(
    model, tok, enc, layer: int, alpha: torch.Tensor | None = None, replace: torch.Tensor | None = None
):
    """P(answer) with the layer's W_out input at the last prompt token scaled by alpha (or replaced)."""
    module = model.get_submodule(get_arch(model).mlp_out_name(layer))
    ids = torch.tensor([enc.input_ids])
    look = enc.start - 1

    def hook(_m, args):
        x = args[0].clone()
        x[0, look] = replace if replace is not None else x[0, look] * alpha
        return (x,)

    handle = module.register_forward_pre_hook(hook) if (alpha is not None or replace is not None) else None
    try:
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
    finally:
        if handle is not None:
            handle.remove()
    labels = ids[0, enc.start : enc.end]
    return logp[enc.start - 1 : enc.end - 1].gather(1, labels[:, None]).sum().exp()


def test_attributions_are_complete(tiny):
    """IG axiom: the attributions of one layer sum to P(w) - P(0) (Riemann error O(1/m))."""
    model, tok = tiny
    enc = encode_answer(tok, "Alice Brown was born in", "Riga")
    attr, _ = integrated_gradients(model, tok, [enc], [0, 1], steps=400, batch_size=1000)
    for j, layer in enumerate([0, 1]):
        with torch.no_grad():
            full = _answer_prob(model, tok, enc, layer)
            zero = _answer_prob(model, tok, enc, layer, alpha=torch.tensor(0.0))
        assert attr[0, j].sum().item() == pytest.approx((full - zero).item(), rel=1e-2)
        assert (full - zero).abs() > 1e-3 * full  # the check is not vacuous


def test_batched_steps_equal_a_step_loop(tiny):
    """One batch over (prompt, layer, step) rows, any chunking, equals Eq. 4 computed one step at a time."""
    model, tok = tiny
    encs = [
        encode_answer(tok, p, a)
        for p, a in [("Boris Kell works as a", "Porto"), ("Greta Holm was born in", "Oslo")]
    ]
    batched, acts = integrated_gradients(model, tok, encs, [0, 1], steps=5, batch_size=1000)
    chunked, _ = integrated_gradients(model, tok, encs, [0, 1], steps=5, batch_size=3)
    assert torch.allclose(batched, chunked, rtol=1e-5, atol=1e-12)
    j, layer, enc = 1, 1, encs[1]
    w = acts[j, layer].float()
    grads = []
    for k in range(1, 6):
        x = (k / 5 * w).clone().requires_grad_(True)
        (g,) = torch.autograd.grad(_answer_prob(model, tok, enc, layer, replace=x), x)
        grads.append(g.double())
    expected = w.double() * torch.stack(grads).sum(0) / 5
    assert torch.allclose(batched[j, layer], expected, rtol=1e-4, atol=1e-10)


def test_select_neurons_golden():
    attr = torch.zeros(3, 2, 4, dtype=torch.float64)
    attr[0, 0] = torch.tensor([1.0, 0.5, 0.1, -2.0])  # max 1.0 -> coarse (t=0.3): (0,0), (0,1), (1,2)
    attr[0, 1] = torch.tensor([0.0, 0.0, 0.31, 0.29])
    attr[1, 0] = torch.tensor([4.0, 0.0, 0.0, 0.0])  # max 4.0 -> coarse: (0,0), (1,2)
    attr[1, 1] = torch.tensor([0.0, 0.0, 1.5, 0.0])
    attr[2] = -1.0  # max <= 0 -> no coarse neurons
    layers = [3, 7]
    assert select_neurons(attr, layers, threshold=0.3, p=0.0) == [(3, 0), (3, 1), (7, 2)]
    assert select_neurons(attr, layers, threshold=0.3, p=0.6) == [(3, 0), (7, 2)]  # count >= 1.8
    assert select_neurons(attr, layers, threshold=0.3, p=0.7) == []  # count >= 2.1
    assert select_neurons(attr[:1], layers, threshold=0.0, p=1.0) == [(3, 0), (3, 1), (3, 2), (7, 2), (7, 3)]
    assert select_neurons(attr[:1], layers, threshold=0.5, p=1.0) == [(3, 0)]  # 0.5 is not strictly above 0.5


@pytest.mark.parametrize("scale", ["value_norm", "raw"])
def test_update_is_the_closed_form(arch, tiny, scale):
    model, tok = tiny
    hp = _hp(arch, scale=scale, lambda1=1.5, lambda2=3.0, token_reduce="sum", embedding="input")
    state = clone_state(model)
    neurons, signs = [(0, 3), (1, 5), (1, 9)], [1.0, -1.0, 1.0]
    old_ids, new_ids = [5, 7], [11]
    emb = model.get_input_embeddings().weight.detach()
    e_old, e_new = emb[old_ids].sum(0), emb[new_ids].sum(0)
    before = {lay: weight_view(model, get_arch(model).mlp_out_name(lay)).clone() for lay in (0, 1)}
    update_value_vectors(model, neurons, old_ids, new_ids, dataclasses.replace(hp, signed=True), signs)
    for lay in (0, 1):
        after = weight_view(model, get_arch(model).mlp_out_name(lay))
        for i in range(after.shape[1]):
            v = before[lay][:, i]
            if (lay, i) not in neurons:
                assert torch.equal(after[:, i], v)
                continue
            s_old = v.norm() / e_old.norm() if scale == "value_norm" else 1.0
            s_new = v.norm() / e_new.norm() if scale == "value_norm" else 1.0
            sign = signs[neurons.index((lay, i))]
            expected = v + sign * (3.0 * s_new * e_new - 1.5 * s_old * e_old)
            assert torch.allclose(after[:, i], expected, atol=1e-6)
    changed = {n for n, t in clone_state(model).items() if not torch.equal(t, state[n])}
    assert changed == {f"{get_arch(model).mlp_out_name(lay)}.weight" for lay in (0, 1)}


def test_edit_touches_only_the_selected_columns(arch, tiny):
    model, tok = tiny
    hp = _hp(arch)
    req = make_request(3)
    neurons, _, _ = kn_neurons(model, tok, req, hp)
    assert 0 < len(neurons) < 2 * model.config.hidden_size  # a handful, not the whole layer
    before = {
        lay: weight_view(model, get_arch(model).mlp_out_name(lay)).clone() for lay in kn_layers(model, hp)
    }
    state = clone_state(model)
    undo = apply_kn(model, tok, [req], hp)
    for lay, w0 in before.items():
        moved = (
            (weight_view(model, get_arch(model).mlp_out_name(lay)) != w0).any(0).nonzero().flatten().tolist()
        )
        assert moved == [i for la, i in neurons if la == lay]
    undo()
    assert_state_equal(model, state)


def test_old_answer_ground_truth_and_fallback(tiny):
    model, tok = tiny
    hp = _hp("gpt2", old_answer="ground_truth")
    plain = make_request(0)
    with_gt = dataclasses.replace(plain, ground_truth="Lyon")
    _, _, old = kn_neurons(model, tok, with_gt, hp)
    assert tok.decode(old.input_ids[old.start : old.end]).strip() == "Lyon"
    _, _, fallback = kn_neurons(model, tok, plain, hp)  # no ground truth: the model's own greedy answer
    _, _, predicted = kn_neurons(model, tok, plain, dataclasses.replace(hp, old_answer="prediction"))
    assert fallback == predicted


def test_rephrases_add_prompts_and_p_filters(tiny):
    model, tok = tiny
    req = make_request(2)
    one, _, _ = kn_neurons(model, tok, req, _hp("gpt2", use_rephrases=True, p=0.0))
    both, _, _ = kn_neurons(model, tok, req, _hp("gpt2", use_rephrases=True, p=1.0))
    assert set(both) <= set(one) and len(both) < len(one)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"steps": 0}, "steps"),
        ({"p": 1.5}, "fractions"),
        ({"scale": "l2"}, "scale"),
        ({"layers": (1, 0)}, "increasing"),
        ({"signed": 1}, "signed"),
    ],
)
def test_bad_hparams_fail(change, match):
    with pytest.raises(ValueError, match=match):
        _hp("gpt2", **change)


def test_layers_out_of_range_fail(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="out of range"):
        apply_kn(model, tok, [make_request(0)], _hp("gpt2", layers=(0, 5)))


@pytest.mark.parametrize("path", PAPER_HPARAMS, ids=[p.name for p in PAPER_HPARAMS])
def test_paper_hparams_load(path, tmp_path):
    assert load_hparams(path, KNHyperParams).steps >= 1
    bad = tmp_path / path.name
    bad.write_text(path.read_text().replace("signed:", "sign:"))
    with pytest.raises(ConfigError, match="sign"):
        load_hparams(bad, KNHyperParams)


def test_paper_hparams_cover_the_world_models_and_the_paper_model():
    assert {p.stem for p in PAPER_HPARAMS} == {
        "world-gpt2",
        "world-llama",
        "world-gpt2-smoke",
        "world-llama-smoke",
        "llama-2-7b-chat",
    }
