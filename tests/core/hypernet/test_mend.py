"""MEND editor: edited-weight resolution from arch specs, hook-captured factors, pseudo-gradient and update."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.func import functional_call

from core.editors.base import encode_prompt_target
from core.editors.ft import target_new_loss
from core.editors.mend import edit_factors, model_inputs
from core.hypernet.mend import MENDEditor, build_editor, capture_factors, resolve_edited_weights
from core.models.arch import get_arch
from tests.core.hypernet.conftest import NET

PAIRS = (["Alice Brown was born in", "The city where Clara Voss lives is"], ["Riga", "Oslo Porto"])


def test_resolves_arch_mlp_projections_in_layer_then_template_order(tiny, arch):
    model, _ = tiny
    weights = resolve_edited_weights(model, NET)
    spec = get_arch(model)
    roles = [spec.mlp_gate, spec.mlp_in, spec.mlp_out] if spec.mlp_gate else [spec.mlp_in, spec.mlp_out]
    assert [w.module for w in weights] == [t.format(layer) for layer in (0, 1) for t in roles]
    for w in weights:
        p = model.get_parameter(w.param)
        assert w.conv1d == (arch == "gpt2")
        assert tuple(p.shape) == ((w.d_in, w.d_out) if w.conv1d else (w.d_out, w.d_in))
    explicit = dataclasses.replace(NET, layers=(1,), inner_modules=(spec.mlp_out,))
    assert [w.module for w in resolve_edited_weights(model, explicit)] == [spec.mlp_out.format(1)]


def test_unknown_layer_or_module_fails_with_names(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match=r"layers \[5\] do not exist"):
        resolve_edited_weights(model, dataclasses.replace(NET, layers=(0, 5)))
    with pytest.raises(KeyError, match="no module"):
        resolve_edited_weights(model, dataclasses.replace(NET, inner_modules=("nothing.{}.here",)))


def test_factors_give_the_true_weight_gradient(tiny):
    """Invariant of capture_factors: sum_t delta_t u_t^T == dL/dW (in d_out x d_in), padding included."""
    model, tok = tiny
    weights = resolve_edited_weights(model, NET)
    batch = encode_prompt_target(tok, *PAIRS, "cpu")
    factors = capture_factors(model, weights, lambda lg: target_new_loss(lg, batch), model_inputs(batch))
    names = [w.param for w in weights]
    params = {n: model.get_parameter(n).detach().clone().requires_grad_(True) for n in names}
    loss = target_new_loss(functional_call(model, params, kwargs=model_inputs(batch)).logits, batch)
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    for w, g in zip(weights, grads, strict=True):
        u, d = factors[w.param]
        assert u.shape[1] == w.d_in and d.shape[1] == w.d_out
        assert u.shape[0] < batch.attention_mask.numel()  # padding / post-target tokens dropped
        torch.testing.assert_close(d.T @ u, g.T if w.conv1d else g, rtol=1e-4, atol=1e-6)
    assert all(p.grad is None for p in model.parameters())


def test_untrained_editor_is_one_gradient_descent_step(tiny):
    model, tok = tiny
    editor = build_editor(NET, model).eval()
    factors = edit_factors(model, editor, tok, *PAIRS)
    current = {w.param: model.get_parameter(w.param).detach() for w in editor.weights}
    new = editor.new_weights(current, factors)
    for w in editor.weights:
        u, d = factors[w.param]
        grad = d.T @ u
        torch.testing.assert_close(
            new[w.param], current[w.param] - NET.edit_lr * (grad.T if w.conv1d else grad)
        )


def test_shared_editor_has_one_transform_per_shape_with_modes(tiny, arch):
    model, _ = tiny
    shared = build_editor(NET, model)
    shapes = {w.shape for w in shared.weights}
    assert len(shared.transforms) == len(shapes)
    modes = [shared.keys[w.param][1] for w in shared.weights]
    assert sorted(modes) == sorted(
        i for s in shapes for i in range(sum(w.shape == s for w in shared.weights))
    )
    own = build_editor(dataclasses.replace(NET, shared=False), model)
    assert len(own.transforms) == len(own.weights) and all(m is None for _, m in own.keys.values())
    assert torch.equal(shared.edit_lrs, torch.full((len(shared.weights),), NET.edit_lr))


def test_new_weights_are_differentiable_in_the_editor(tiny):
    model, tok = tiny
    editor = build_editor(NET, model).train()
    factors = edit_factors(model, editor, tok, *PAIRS)
    new = editor.new_weights(dict(model.named_parameters()), factors)
    sum(v.pow(2).sum() for v in new.values()).backward()
    assert editor.edit_lrs.grad is not None and editor.edit_lrs.grad.abs().sum() > 0
    assert all(p.grad is not None for p in editor.network_parameters())


def test_build_editor_is_seeded_and_leaves_global_rng_alone(tiny):
    model, _ = tiny
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a, b = build_editor(NET, model, seed=1), build_editor(NET, model, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (n, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), n
    c = build_editor(NET, model, seed=2)
    assert not torch.equal(
        next(iter(c.transforms.values())).mlp.layers[0].v, next(iter(a.transforms.values())).mlp.layers[0].v
    )


def test_editor_needs_weights():
    with pytest.raises(ValueError, match="at least one"):
        MENDEditor(NET, [])
