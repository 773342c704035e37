"""ArchSpec templates resolve to real modules with the expected shapes; the weight view convention."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig

from core.models.arch import (
    ARCHS,
    UnsupportedArchitectureError,
    get_arch,
    get_module,
    linear_weight,
    mlp_out_weight,
    weight_view,
)
from core.models.tiny import TINY_ARCHS, build_tiny_model


@pytest.fixture(scope="module")
def models() -> dict:
    return {mt: build_tiny_model(mt)[0] for mt in TINY_ARCHS}


def test_every_arch_has_a_tiny_model() -> None:
    assert set(TINY_ARCHS) == set(ARCHS) == {"gpt2", "gptj", "llama", "mistral", "qwen2"}


@pytest.mark.parametrize("model_type", TINY_ARCHS)
def test_get_arch_from_model_config_and_string(models: dict, model_type: str) -> None:
    model = models[model_type]
    assert get_arch(model) is get_arch(model.config) is get_arch(model_type)
    assert get_arch(model).model_type == model_type


def test_unknown_model_type_is_a_clear_error() -> None:
    with pytest.raises(UnsupportedArchitectureError, match="'bert'.*supported"):
        get_arch(BertConfig())


@pytest.mark.parametrize("model_type", TINY_ARCHS)
def test_templates_resolve_with_expected_shapes(models: dict, model_type: str) -> None:
    model, spec = models[model_type], get_arch(models[model_type])
    cfg = model.config
    d, n_layers, vocab = spec.hidden_size(cfg), spec.n_layers(cfg), cfg.vocab_size
    assert (d, n_layers) == (32, 2)
    for layer in range(n_layers):
        assert get_module(model, spec.layer_name(layer)) is not None
        w_in = weight_view(model, spec.mlp_in_name(layer))  # (d_ff, d)
        w_out = weight_view(model, spec.mlp_out_name(layer))  # (d, d_ff)
        d_ff = w_in.shape[0]
        assert w_in.shape == (d_ff, d) and w_out.shape == (d, d_ff) and d_ff > d
        if spec.mlp_gate is not None:
            assert weight_view(model, spec.mlp_gate.format(layer)).shape == (d_ff, d)
        assert weight_view(model, spec.attn_out_name(layer)).shape == (d, d)
    assert get_module(model, spec.embed).weight.shape == (vocab, d)
    assert get_module(model, spec.lm_head).weight.shape == (vocab, d)
    assert get_module(model, spec.final_norm).weight.shape == (d,)
    if spec.pos_embed is not None:
        assert get_module(model, spec.pos_embed).weight.shape[1] == d


@pytest.mark.parametrize("model_type", TINY_ARCHS)
def test_conv1d_flag_matches_storage(models: dict, model_type: str) -> None:
    param, conv1d = mlp_out_weight(models[model_type], 0)
    assert conv1d is get_arch(model_type).conv1d is (model_type == "gpt2")
    d_ff = 4 * 32 if get_arch(model_type).mlp_gate is None else param.numel() // 32
    assert param.shape == ((d_ff, 32) if conv1d else (32, d_ff))  # Conv1D stores [d_in, d_out]


@pytest.mark.parametrize("model_type", TINY_ARCHS)
def test_weight_view_is_out_in_and_shares_storage(models: dict, model_type: str) -> None:
    model, spec = models[model_type], get_arch(model_type)
    name = spec.mlp_out_name(1)
    module = get_module(model, name)
    view = weight_view(model, name)  # (d_out, d_in)
    x = torch.randn(view.shape[1])
    bias = module.bias if getattr(module, "bias", None) is not None else 0.0
    with torch.no_grad():
        torch.testing.assert_close(module(x[None])[0] - bias, view @ x)
        delta = torch.randn_like(view)
        before = module(x[None])[0].clone()
        view.add_(delta)  # edits the model in place
        torch.testing.assert_close(module(x[None])[0] - before, delta @ x, rtol=1e-4, atol=1e-5)
        view.sub_(delta)


def test_missing_module_and_non_linear_errors(models: dict) -> None:
    model = models["gpt2"]
    with pytest.raises(KeyError, match="no module"):
        get_module(model, "transformer.h.9.mlp.c_proj")
    with pytest.raises(TypeError, match="not a linear layer"):
        linear_weight(model, "transformer.ln_f")
