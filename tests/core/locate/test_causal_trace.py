"""Exact invariants of causal tracing (ROME §2.1) on tiny random GPT-2 and LLaMA models."""

from __future__ import annotations

import pytest
import torch

from core.eval.scoring import score_answers
from core.locate import encode_trace_input, severed_trace, subject_embedding_std, trace_fact
from core.locate.causal_trace import _restore_mask
from core.locate.patching import Patch, run_patched
from core.models.arch import get_arch
from core.models.tiny import build_tiny_model

ARCHS = ("gpt2", "llama")
PROMPT, SUBJECT, ANSWER = "The city where Alice Brown lives is", "Alice Brown", "Oslo"
ATOL = 1e-7  # float32 noise between batch shapes; tiny-model probabilities are ~3e-3


def sharp_tiny(model_type: str):
    """A tiny random model with its matrices scaled x8, so that its predictions depend on the input."""
    model, tok = build_tiny_model(model_type, seed=1)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(8.0)
    return model, tok


@pytest.fixture(scope="module", params=ARCHS)
def tiny(request):
    return sharp_tiny(request.param)


def _trace(model, tok, **kw):
    kw.setdefault("n_samples", 4)
    kw.setdefault("noise_std", 2.0)  # about 3x the std of the scaled embeddings
    return trace_fact(model, tok, PROMPT, SUBJECT, ANSWER, **kw)


def test_encode_trace_input_spans(tiny):
    model, tok = tiny
    inp = encode_trace_input(tok, PROMPT, SUBJECT, ANSWER)
    b, e = inp.subject_range
    assert tok.decode(inp.input_ids[b:e]).strip() == SUBJECT
    assert len(inp.input_ids) == inp.n_prompt and len(inp.answer_ids) == 1
    assert tok.decode(inp.answer_ids).strip() == ANSWER
    with pytest.raises(ValueError):
        encode_trace_input(tok, PROMPT, "Boris Kell", ANSWER)


@pytest.mark.parametrize("kind", ["hidden", "mlp", "attn"])
def test_zero_noise_restores_clean_everywhere(tiny, kind):
    r = _trace(*tiny, kind=kind, noise_std=0.0)
    assert r.corrupted_prob == pytest.approx(r.clean_prob, abs=ATOL)
    torch.testing.assert_close(r.restored, torch.full_like(r.restored, r.clean_prob), atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", ["hidden", "mlp", "attn"])
def test_positions_before_subject_change_nothing(tiny, kind):
    r = _trace(*tiny, kind=kind)
    assert abs(r.clean_prob - r.corrupted_prob) > 100 * ATOL  # the noise matters
    b = r.subject_range[0]
    assert b >= 1
    torch.testing.assert_close(r.indirect_effect[:, :b], torch.zeros(r.n_layers, b), atol=ATOL, rtol=0)


def test_last_layer_last_token_gives_clean_prob(tiny):
    r = _trace(*tiny)
    assert float(r.restored[-1, -1]) == pytest.approx(r.clean_prob, abs=ATOL)
    assert r.restored.shape == (get_arch(tiny[0]).n_layers(tiny[0].config), len(r.tokens))


def test_restoring_all_positions_of_a_layer_gives_clean_prob(tiny):
    model, tok = tiny
    spec, inp = get_arch(model), encode_trace_input(tok, PROMPT, SUBJECT, ANSWER)
    n_layers, ids = spec.n_layers(model.config), torch.tensor([inp.input_ids])
    read, answer = [inp.n_prompt - 1], inp.answer_ids[0]
    clean = run_patched(model, ids, read, record=[("hidden", i) for i in range(n_layers)])
    values = torch.stack([clean.recorded[f"hidden.{i}"] for i in range(n_layers)])
    mask = torch.zeros(n_layers, n_layers, ids.shape[1], dtype=torch.bool)
    mask[torch.arange(n_layers), torch.arange(n_layers)] = True  # config c restores every position of layer c
    noise = torch.randn((3, inp.subject_range[1] - inp.subject_range[0], values.shape[-1])) * 2.0
    run = run_patched(model, ids, read, n_configs=n_layers, noise=noise, span=inp.subject_range,
                      patches=[Patch("hidden", mask, values)])
    p = run.logits[:, 0].softmax(-1)[:, answer]
    torch.testing.assert_close(p, clean.logits[:, 0].softmax(-1)[:, answer].expand(len(p)), atol=ATOL, rtol=0)


def test_corrupted_prob_matches_manual_noisy_forward(tiny):
    model, tok = tiny
    r = _trace(model, tok, noise_std=None, noise_scale=3.0, n_samples=5, seed=7)
    inp = encode_trace_input(tok, PROMPT, SUBJECT, ANSWER)
    (b, e), embed = inp.subject_range, model.get_input_embeddings()
    std = 3.0 * float(embed.weight.detach().std())
    noise = torch.randn((5, e - b, embed.weight.shape[1]), generator=torch.Generator().manual_seed(7)) * std
    with torch.no_grad():
        x = embed(torch.tensor([inp.input_ids])).repeat(5, 1, 1)
        x[:, b:e] += noise
        p = model(inputs_embeds=x).logits[:, -1].softmax(-1)[:, inp.answer_ids[0]].mean()
    assert r.noise_std == pytest.approx(std)
    assert r.corrupted_prob == pytest.approx(float(p), abs=ATOL)


@pytest.mark.parametrize("kind", ["hidden", "mlp", "attn", "severed-mlp", "severed-attn"])
def test_batching_equals_one_config_at_a_time(tiny, kind):
    def run(rows):
        if kind.startswith("severed"):
            return severed_trace(*tiny, PROMPT, SUBJECT, ANSWER, sever=kind.split("-")[1], n_samples=4,
                                 noise_std=2.0, max_batch_rows=rows)
        return _trace(*tiny, kind=kind, window=None if kind == "hidden" else 2, max_batch_rows=rows)

    torch.testing.assert_close(run(4).restored, run(10_000).restored, atol=ATOL, rtol=0)


def test_seeded_determinism(tiny):
    a, b, c = _trace(*tiny, seed=3), _trace(*tiny, seed=3), _trace(*tiny, seed=4)
    assert torch.equal(a.restored, b.restored) and a.corrupted_prob == b.corrupted_prob
    assert a.corrupted_prob != c.corrupted_prob


@pytest.mark.parametrize("sever", ["mlp", "attn"])
def test_severed_last_layer_equals_plain_hidden(tiny, sever):
    plain = _trace(*tiny)
    cut = severed_trace(*tiny, PROMPT, SUBJECT, ANSWER, sever=sever, n_samples=4, noise_std=2.0)
    torch.testing.assert_close(cut.restored[-1], plain.restored[-1], atol=ATOL, rtol=0)
    b = cut.subject_range[0]
    torch.testing.assert_close(cut.restored[:, :b], plain.restored[:, :b], atol=ATOL, rtol=0)
    # at the last token of layer 0 the restored state still passes through the later layer's module
    assert abs(float(cut.restored[0, -1] - plain.restored[0, -1])) > 100 * ATOL


def test_restore_mask_follows_rome_window():
    mask = _restore_mask(n_layers=4, n_prompt=3, n_input=3, window=2)  # config = layer * 3 + position
    assert mask[0 * 3 + 1, :, 1].tolist() == [True, False, False, False]  # [l - 1, l + 1) clipped
    assert mask[2 * 3 + 0, :, 0].tolist() == [False, True, True, False]
    assert not mask[2 * 3 + 0, :, 1:].any()
    full = _restore_mask(n_layers=4, n_prompt=3, n_input=3, window=10)
    assert full.any(2).all()  # window 10 covers every layer of a 4-layer model
    single = _restore_mask(4, 3, 3, window=1)
    c = torch.arange(12)
    assert single.sum((1, 2)).eq(1).all() and single[c, c // 3, c % 3].all()


def test_sequence_mode_clean_prob_is_teacher_forced_product(tiny):
    model, tok = tiny
    r = _trace(model, tok, answer_mode="sequence")
    r_multi = trace_fact(model, tok, PROMPT, SUBJECT, "Oslo and Riga", answer_mode="sequence", n_samples=2)
    for res in (r, r_multi):
        score = score_answers(model, tok, [PROMPT], [res.answer])[0]
        assert res.answer_ids == tuple(score.label_ids.tolist())
        assert res.clean_prob == pytest.approx(float(score.logprobs.sum().exp()), rel=1e-5)
        assert res.n_tokens == len(res.tokens)
    assert len(r_multi.answer_ids) > 1


def test_training_flag_is_restored():
    model, tok = sharp_tiny("gpt2")
    model.train()
    trace_fact(model, tok, PROMPT, SUBJECT, ANSWER, n_samples=2)
    assert all(m.training for m in model.modules())


def _naive_restored(model, tok, layer: int, pos: int, *, kind: str, sever: str | None, noise: torch.Tensor):
    """Reference: one forward per noise draw, hooks written out by hand (ROME's trace_with_repatch)."""
    spec, inp = get_arch(model), encode_trace_input(tok, PROMPT, SUBJECT, ANSWER)
    (b, e), ids = inp.subject_range, torch.tensor([inp.input_ids])
    name = {"hidden": spec.layer_name, "mlp": spec.mlp_out_name, "attn": spec.attn_out_name}
    n_layers = spec.n_layers(model.config)

    def run(hooks):
        handles = [model.get_submodule(n).register_forward_hook(h) for n, h in hooks]
        try:
            with torch.no_grad():
                return model(input_ids=ids).logits[0, -1].softmax(-1)[inp.answer_ids[0]]
        finally:
            for hd in handles:
                hd.remove()

    def first(out):
        return out[0] if isinstance(out, tuple) else out

    clean, frozen, probs = {}, {}, []
    run([(name[kind](layer), lambda m, i, o: clean.__setitem__(layer, first(o).clone()))])
    for x in noise:
        def add_noise(m, i, o, x=x):
            o = o.clone()
            o[0, b:e] += x
            return o

        frozen.clear()
        if sever is not None:
            rec = [(name[sever](j), lambda m, i, o, j=j: frozen.__setitem__(j, first(o).clone()))
                   for j in range(n_layers)]
            run([(spec.embed, add_noise), *rec])

        def restore(m, i, o):
            h = first(o).clone()
            h[0, pos] = clean[layer][0, pos]
            return (h, *o[1:]) if isinstance(o, tuple) else h

        def freeze(m, i, o, j):
            h = o.clone()
            h[0, pos] = frozen[j][0, pos]
            return h

        hooks = [(spec.embed, add_noise), (name[kind](layer), restore)]
        if sever is not None:
            hooks += [(name[sever](j), lambda m, i, o, j=j: freeze(m, i, o, j)) for j in range(n_layers)]
        probs.append(run(hooks))
    return float(torch.stack(probs).mean())


CASES = [("hidden", None), ("mlp", None), ("attn", None), ("hidden", "mlp"), ("hidden", "attn")]


@pytest.mark.parametrize(("kind", "sever"), CASES)
def test_matches_naive_per_sample_reference(tiny, kind, sever):
    model, tok = tiny
    if sever is None:
        r = _trace(model, tok, kind=kind, window=1, seed=5, n_samples=3)
    else:
        r = severed_trace(model, tok, PROMPT, SUBJECT, ANSWER, sever=sever, n_samples=3, noise_std=2.0,
                          seed=5)
    (b, e), d = r.subject_range, model.get_input_embeddings().weight.shape[1]
    noise = torch.randn((3, e - b, d), generator=torch.Generator().manual_seed(5)) * 2.0
    for layer, pos in [(0, e - 1), (0, r.n_tokens - 1), (r.n_layers - 1, r.n_tokens - 1), (1, b)]:
        ref = _naive_restored(model, tok, layer, pos, kind=kind, sever=sever, noise=noise)
        assert float(r.restored[layer, pos]) == pytest.approx(ref, abs=ATOL), (layer, pos)


def test_subject_embedding_std_pools_subject_tokens(tiny):
    model, tok = tiny
    ids = [i for s in ("Alice Brown", "Oslo") for i in tok(s, add_special_tokens=False)["input_ids"]]
    expected = float(model.get_input_embeddings().weight.detach()[ids].std())
    assert subject_embedding_std(model, tok, ["Alice Brown", "Oslo"]) == pytest.approx(expected)


def test_bad_arguments_raise(tiny):
    with pytest.raises(ValueError):
        _trace(*tiny, kind="hidden", window=3)
    with pytest.raises(ValueError):
        _trace(*tiny, kind="mlp", window=0)
    with pytest.raises(ValueError):
        severed_trace(*tiny, PROMPT, SUBJECT, ANSWER, sever="hidden")
