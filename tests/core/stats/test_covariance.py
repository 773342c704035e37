"""Covariance statistics: the hand-computed second moment, padding masked, the stopped forward, cache keys."""

from __future__ import annotations

import pytest
import torch

from core.models.loading import load_model
from core.models.tiny import TINY_TEXTS, build_tiny_model, save_tiny_model
from core.stats import (
    compute_layer_cov,
    compute_layer_covs,
    corpus_texts,
    cov_cache_path,
    load_or_compute_cov,
    model_identity,
)

TEXTS = list(TINY_TEXTS[:5]) + ["Oslo."]  # different lengths, so batches are padded


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _keys_one_by_one(model, tok, module_name):
    module, rows = model.get_submodule(module_name), []
    handle = module.register_forward_pre_hook(lambda _m, args: rows.append(args[0][0].detach()))
    with torch.no_grad():
        for t in TEXTS:
            model(**tok(t, return_tensors="pt"))
    handle.remove()
    return torch.cat(rows).double()  # (n_tokens, d_in)


@pytest.mark.parametrize("arch,side", [("gpt2", "left"), ("gpt2", "right"), ("llama", "left")])
def test_cov_equals_xtx_over_n_with_padding_masked(arch, side):
    model, tok = build_tiny_model(arch)
    tok.padding_side = side
    name = "transformer.h.1.mlp.c_proj" if arch == "gpt2" else "model.layers.1.mlp.down_proj"
    x = _keys_one_by_one(model, tok, name)
    cov = compute_layer_cov(model, tok, name, TEXTS, batch_size=4, dtype=torch.float64)
    assert torch.allclose(cov, x.T @ x / x.shape[0], atol=1e-6, rtol=1e-5)


def test_forward_stops_at_the_module():
    model, tok = build_tiny_model("gpt2")
    calls = []
    handle = model.transformer.h[1].register_forward_hook(lambda *a: calls.append(1))
    compute_layer_cov(model, tok, "transformer.h.0.mlp.c_proj", TEXTS)
    handle.remove()
    assert calls == []


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_one_pass_over_all_layers_equals_each_layer_alone_bit_for_bit(arch):
    model, tok = build_tiny_model(arch)
    template = "transformer.h.{}.mlp.c_proj" if arch == "gpt2" else "model.layers.{}.mlp.down_proj"
    names = [template.format(i) for i in reversed(range(model.config.num_hidden_layers))]  # order-free
    together = compute_layer_covs(model, tok, names, TEXTS, batch_size=4)
    assert list(together) == names
    for name in names:
        assert torch.equal(together[name], compute_layer_cov(model, tok, name, TEXTS, batch_size=4))


def test_one_pass_stops_after_the_highest_module():
    model, tok = build_tiny_model("gpt2")
    calls = []
    handle = model.transformer.h[1].mlp.register_forward_hook(lambda *a: calls.append(1))
    compute_layer_covs(model, tok, ["transformer.h.1.attn.c_proj", "transformer.h.0.mlp.c_proj"], TEXTS)
    handle.remove()
    assert calls == []


def test_cache_path_encodes_every_key_component(tmp_path):
    base = dict(
        root=tmp_path,
        model_id="org/model",
        revision="abc",
        layer="h.1.mlp",
        corpus_name="world:default:0",
        n_samples=100,
        dtype="float32",
    )
    path = cov_cache_path(**base)
    assert path == tmp_path / "org--model@abc" / "h.1.mlp" / "world-default-0-n100-float32.pt"
    changes = dict(
        root=tmp_path / "x",
        model_id="org/other",
        revision="abd",
        layer="h.2.mlp",
        corpus_name="tiny",
        n_samples=101,
        dtype="float64",
    )
    for key, value in changes.items():
        assert cov_cache_path(**{**base, key: value}) != path, key
    assert cov_cache_path(**base, max_length=64) != path


def test_load_or_compute_saves_once(tmp_path):
    path, calls = tmp_path / "a" / "c.pt", []

    def compute():
        calls.append(1)
        return torch.eye(3)

    assert torch.equal(load_or_compute_cov(path, compute), torch.eye(3))
    assert torch.equal(load_or_compute_cov(path, compute), torch.eye(3))
    assert calls == [1] and path.is_file() and not list(path.parent.glob(".*"))

    other = tmp_path / "b" / "other-name.pt"  # the file's bytes depend on the tensor only (same DVC hash)
    load_or_compute_cov(other, compute)
    assert other.read_bytes() == path.read_bytes()


def test_model_identity(tmp_path):
    model, tok = load_model(save_tiny_model("gpt2", tmp_path / "tiny-gpt2"))
    model_id, revision = model_identity(model)
    assert model_id == "tiny-gpt2" and len(revision) == 12 + 1 + 8
    with pytest.raises(ValueError, match="stats_dir"):
        model_identity(build_tiny_model("gpt2")[0])


def test_corpus_texts():
    assert corpus_texts("tiny", 3) == list(TINY_TEXTS[:3])
    with pytest.raises(ValueError, match="unknown corpus"):
        corpus_texts("wiki", 3)


def test_layer_index_uses_the_arch_template():
    model, tok = build_tiny_model("llama")
    by_name = compute_layer_cov(model, tok, "model.layers.0.mlp.down_proj", TEXTS)
    assert torch.equal(compute_layer_cov(model, tok, 0, TEXTS), by_name)
    up = compute_layer_cov(model, tok, 0, TEXTS, module_template="model.layers.{}.mlp.up_proj")
    assert up.shape == (32, 32) and by_name.shape[0] != 32
