"""ICE / IKE (core.editors.icl, core.editors.retrieval): the context-prefix hooks, undo, and retrieval."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from core.config import load_hparams
from core.editors import retrieval
from core.editors.base import UndoError
from core.editors.icl import (
    ICEHyperParams,
    IKEHyperParams,
    apply_ice,
    apply_ike,
    find_prefix,
    ike_demonstrations,
)
from core.eval.scoring import encode_answer, greedy_generate, score_answers
from core.models.tiny import tiny_world_lm
from core.types import EditRequest
from tests.core.editors.conftest import assert_state_equal, clone_state, hparams_path, make_request

PEOPLE = (
    "Alice Brown",
    "Boris Kell",
    "Clara Voss",
    "Dmitri Lund",
    "Erin Page",
    "Farid Noor",
    "Greta Holm",
    "Hugo Marsh",
)
CITIES = ("Lyon", "Oslo", "Porto", "Quito", "Riga", "Turin", "Utrecht", "Varna")
ICE = ICEHyperParams(fact_template="New Fact: {prompt} {target}\n", query_prefix="Prompt: ")
REQS = [make_request(i) for i in range(4)]
PROMPTS = [r.prompt for r in REQS] + [r.rephrases[0] for r in REQS] + ["Greta Holm works as a"]
ANSWERS = [r.target_new for r in REQS] * 2 + ["painter"]


def _with_context(tok, text: str, row: list[int]) -> tuple[list[int], int]:
    """Plain-model ids of `text` followed by `row` (one BOS at the front when the row has one), and the offset."""
    ctx = tok(text, add_special_tokens=False)["input_ids"]
    if tok.bos_token_id is not None and row[:1] == [tok.bos_token_id]:
        full = row[:1] + ctx + row[1:]
    else:
        full = ctx + row
    return full, len(full) - len(row)


def _reference_logprobs(model, tok, text: str) -> list[torch.Tensor]:
    out = []
    for prompt, answer in zip(PROMPTS, ANSWERS, strict=True):
        e = encode_answer(tok, prompt, answer)
        full, off = _with_context(tok, text, list(e.input_ids))
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([full])).logits[0].float()
        labels = torch.tensor(e.input_ids[e.start : e.end])
        logp = torch.log_softmax(logits[off + e.start - 1 : off + e.end - 1], -1)
        out.append(logp.gather(-1, labels[:, None]).squeeze(-1))
    return out


@pytest.mark.parametrize("side", ["left", "right"])
def test_prefix_equals_plain_model_on_context_plus_input(arch, tiny, side):
    model, tok = tiny
    tok.padding_side = side
    undo = apply_ice(model, tok, REQS[:2], ICE)
    text = find_prefix(model).text
    assert text == "New Fact: Alice Brown was born in Riga\nNew Fact: Boris Kell works as a Porto\nPrompt: "
    scores = score_answers(model, tok, PROMPTS, ANSWERS, batch_size=4)  # padded batches of mixed lengths
    undo()
    for s, ref in zip(scores, _reference_logprobs(model, tok, text), strict=True):
        torch.testing.assert_close(s.logprobs, ref, atol=1e-5, rtol=1e-5)


def _greedy_reference(model, tok, text: str, prompt: str, n: int) -> list[int]:
    ids, _ = _with_context(tok, text, list(tok(prompt)["input_ids"]))
    out = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
            out.append(nxt)
            ids.append(nxt)
    return out


def test_greedy_generation_with_kv_cache_matches_plain_model(arch, tiny):
    model, tok = tiny
    undo = apply_ice(model, tok, REQS[:1], ICE)
    text = find_prefix(model).text
    gens = greedy_generate(model, tok, PROMPTS[:5], max_new_tokens=6, batch_size=3)
    undo()
    for prompt, g in zip(PROMPTS[:5], gens, strict=True):
        ref = _greedy_reference(model, tok, text, prompt, 6)
        assert list(g.token_ids) == ref[: len(g.token_ids)]


def test_forward_without_position_ids_and_with_labels(arch, tiny):
    model, tok = tiny
    tok.padding_side = "right"
    enc = tok(["Alice Brown was born in Riga"], return_tensors="pt")
    undo = apply_ice(model, tok, REQS[:1], ICE)
    text = find_prefix(model).text
    out = model(input_ids=enc["input_ids"], labels=enc["input_ids"])
    undo()
    full, off = _with_context(tok, text, enc["input_ids"][0].tolist())
    ref = model(input_ids=torch.tensor([full])).logits[:, off:]
    assert out.logits.shape == enc["input_ids"].shape + (ref.shape[-1],)
    torch.testing.assert_close(out.logits, ref, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out.loss)


def test_undo_is_exact_and_once(arch, tiny):
    model, tok = tiny
    state = clone_state(model)
    enc = tok(PROMPTS[:2], return_tensors="pt", padding=True)
    with torch.no_grad():
        before = model(**enc).logits
    undo = apply_ice(model, tok, REQS[:1], ICE)
    with torch.no_grad():
        during = model(**enc).logits
    assert not torch.allclose(during, before)
    undo()
    assert find_prefix(model) is None
    assert not model._forward_pre_hooks and not model._forward_hooks
    assert_state_equal(model, state)
    with torch.no_grad():
        assert torch.equal(model(**enc).logits, before)
    with pytest.raises(UndoError):
        undo()


def test_sequential_edits_share_one_prefix_and_unwind_last_first(tiny):
    model, tok = tiny
    first = apply_ice(model, tok, REQS[:1], ICE)
    second = apply_ice(model, tok, REQS[1:2], ICE)
    assert find_prefix(model).text.count("New Fact:") == 2
    assert len(model._forward_pre_hooks) == 1
    with pytest.raises(UndoError, match="last first"):
        first()
    second()
    assert find_prefix(model).text.count("New Fact:") == 1
    with pytest.raises(ValueError, match="template"):
        apply_ice(model, tok, REQS[2:3], dataclasses.replace(ICE, query_prefix="Q: "))


def test_context_longer_than_the_position_table_fails_clearly(tiny):
    model, tok = tiny
    undo = apply_ice(model, tok, [make_request(0)], dataclasses.replace(ICE, query_prefix="Prompt: " * 60))
    with pytest.raises(ValueError, match="exceed the model's 128"):
        score_answers(model, tok, PROMPTS[:1], ANSWERS[:1])
    undo()


def test_ice_moves_a_trained_lm_to_the_target_in_context(arch):
    """A tiny LM trained on "Fact: X.\nX." copies a held-out fact from the ICE context (about 2 s)."""
    rng = random.Random(0)
    combos = [(p, c) for p in PEOPLE for c in CITIES]
    rng.shuffle(combos)
    texts = [f"Fact: {p} was born in {c}.\n{p} was born in {c}." for p, c in combos[:48]]
    model, tok = tiny_world_lm(texts, model_type=arch, epochs=60)
    hp = ICEHyperParams(fact_template="Fact: {prompt} {target}.\n", query_prefix="")
    pre_hits = post_hits = 0
    for p, c in combos[48:]:
        req = EditRequest(case_id=p, prompt=f"{p} was born in", subject=p, target_new=c)
        (pre,) = score_answers(model, tok, [req.prompt], [c])
        undo = apply_ice(model, tok, [req], hp)
        (post,) = score_answers(model, tok, [req.prompt], [c])
        undo()
        pre_hits += bool(torch.equal(pre.argmax_ids, pre.label_ids))
        post_hits += bool(torch.equal(post.argmax_ids, post.label_ids))
    assert pre_hits == 0 and post_hits >= 6  # measured: 16/16 (gpt2), 8/16 (llama)


def test_ice_hparams_yaml_and_validation(arch):
    hp = load_hparams(hparams_path("ICE", arch), ICEHyperParams)
    assert hp == ICE
    with pytest.raises(ValueError, match="target"):
        ICEHyperParams(fact_template="Imagine that {prompt}", query_prefix="")
    with pytest.raises(ValueError, match="only"):
        ICEHyperParams(fact_template="{prompt} {target} {x}", query_prefix="")


def _request(i: int, prompt: str, target: str) -> EditRequest:
    return EditRequest(case_id=f"q{i}", prompt=prompt, subject="", target_new=target)


def _ike_hp(**changes) -> IKEHyperParams:
    hp = load_hparams(hparams_path("IKE", "gpt2"), IKEHyperParams)
    easyedit = {"fact_template": ICE.fact_template, "query_prefix": ICE.query_prefix, "k": 2}
    return dataclasses.replace(hp, **{**easyedit, **changes})


def test_ike_retrieves_nearest_demonstrations_with_a_mock_encoder(monkeypatch):
    def encoder(texts):  # deterministic mock: one axis per person named in the text
        names = ("Alice", "Boris", "Clara", "Farid")
        return torch.tensor([[float(n in t) + 0.01 * k for k, n in enumerate(names)] for t in texts])

    monkeypatch.setattr(retrieval, "load_sentence_encoder", lambda name, device="cpu": encoder)
    req = _request(0, "Where does Clara Voss live? Clara Voss lives in", "Porto")
    demos = ike_demonstrations([req], _ike_hp(k=3))
    assert len(demos) == 4
    assert all("New Fact: The city where Clara Voss lives is Riga\n" in d for d in demos[:2])  # copy, update
    assert demos[-1] == f"New Fact: {req.prompt} Porto\nPrompt: {req.prompt} Porto\n\n"  # own copy demo last
    assert demos[0].endswith("Prompt: The city where Clara Voss lives is Riga\n\n")  # ties: pool order


def test_ike_edit_installs_demonstrations_then_fact(tiny):
    model, tok = tiny
    undo = apply_ike(model, tok, [make_request(2)], _ike_hp())
    text = find_prefix(model).text
    assert text.count("\n\n") == 3 and text.endswith(
        "New Fact: The city where Clara Voss lives is Oslo\nPrompt: "
    )
    assert "Clara Voss" in text.split("\n\n")[0]  # the lexical encoder's nearest pool fact comes first
    undo()
    assert find_prefix(model) is None


def test_nearest_orders_by_cosine_and_breaks_ties_by_index():
    pool = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 1.0]])
    assert retrieval.nearest(torch.tensor([1.0, 0.1]), pool, 3) == [0, 2, 3]
    assert retrieval.nearest(torch.tensor([0.0, 1.0]), pool, 10) == [1, 3, 0, 2]


def test_pool_embeddings_cache_is_keyed_by_encoder_and_sentences(tmp_path):
    calls = []

    def encoder(texts):
        calls.append(len(texts))
        return torch.arange(len(texts) * 2, dtype=torch.float32).reshape(-1, 2)

    a = retrieval.embed_pool(encoder, "mock", ["x", "y"], tmp_path)
    b = retrieval.embed_pool(encoder, "mock", ["x", "y"], tmp_path)
    retrieval.embed_pool(encoder, "mock", ["x", "z"], tmp_path)
    retrieval.embed_pool(encoder, "other", ["x", "y"], tmp_path)
    assert torch.equal(a, b) and calls == [2, 2, 2]
    assert len(list(tmp_path.glob("ike-*.pt"))) == 3


@pytest.mark.slow
def test_real_minilm_loads_offline_and_retrieves_paraphrase(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = retrieval.load_sentence_encoder("all-MiniLM-L6-v2")
    pool = encoder(["The capital of France is Paris.", "Bananas are yellow.", "He plays the violin."])
    assert pool.shape == (3, 384)
    assert retrieval.nearest(encoder(["Which city is France's capital?"])[0], pool, 1) == [0]
