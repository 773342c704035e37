"""Batched scoring equals unbatched scoring, answer spans are right, generation is deterministic.

Models (2-layer GPT-2 and LLaMA, hidden 32) and tokenizers (byte-level and metaspace BPE trained on a
few sentences, plus a hand-made BPE) are built in code; nothing is downloaded.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from core.eval.scoring import (
    answer_logits,
    encode_answer,
    encode_answers,
    greedy_generate,
    prompt_seed,
    sample_generate,
    score_answers,
)
from core.metrics import argmax_agreement, target_perplexity, teacher_forced_token_acc

torch.set_num_threads(2)

CORPUS = [
    "The capital of France is Paris.",
    "The mother tongue of Danielle Darrieux is French.",
    "Paris is a city in France and the capital of the country.",
    "Question: who wrote the book?\nAnswer: I don't know.",
] * 4
PROMPTS = [
    "The capital of France is",
    "Paris",
    "The mother tongue of Danielle Darrieux is",
    "Question: who?\nAnswer:",
]
ANSWERS = ["Paris", "is a city in France", "French.", "I don't know."]


def byte_level_tok(trim_offsets: bool = True) -> PreTrainedTokenizerFast:
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.post_processor = processors.ByteLevel(trim_offsets=trim_offsets)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    t.train_from_iterator(
        CORPUS, trainers.BpeTrainer(vocab_size=320, special_tokens=["<eos>"], initial_alphabet=alphabet)
    )
    return PreTrainedTokenizerFast(tokenizer_object=t, eos_token="<eos>", pad_token="<eos>")  # pad == eos


def metaspace_tok() -> PreTrainedTokenizerFast:
    """LLaMA-style: metaspace pre-tokenizer, BOS prepended, separate pad token."""
    t = Tokenizer(models.BPE(unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    t.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    chars = sorted({c for s in CORPUS for c in s.replace(" ", "▁")} | {"▁"})
    trainer = trainers.BpeTrainer(
        vocab_size=200, special_tokens=["<unk>", "<s>", "</s>", "<pad>"], initial_alphabet=chars
    )
    t.train_from_iterator(CORPUS, trainer)
    t.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", t.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )


def gpt2(tok) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_layer=2, n_embd=32, n_head=2, n_positions=128)
    cfg.bos_token_id = cfg.eos_token_id = tok.eos_token_id
    return GPT2LMHeadModel(cfg).eval()


def llama(tok) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=128,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model_tok(request):
    tok = byte_level_tok() if request.param == "gpt2" else metaspace_tok()
    return (gpt2(tok) if request.param == "gpt2" else llama(tok)), tok


def answer_text(tok, prompt: str, answer: str, sep: str = " ") -> str:
    enc = encode_answer(tok, prompt, answer, sep=sep)
    return tok.decode(list(enc.input_ids[enc.start : enc.end]))


# --- spans -------------------------------------------------------------------------------------


@pytest.mark.parametrize("trim", [True, False])
def test_span_byte_level_space_belongs_to_answer(trim):
    tok = byte_level_tok(trim_offsets=trim)
    enc = encode_answer(tok, "The capital of France is", "Paris")
    assert tok.convert_ids_to_tokens(list(enc.input_ids[enc.start : enc.end])) == ["ĠParis"]
    assert enc.end == len(enc.input_ids)
    assert answer_text(tok, "Paris", "is a city in France") == " is a city in France"


def test_span_metaspace_skips_bos_and_covers_answer():
    tok = metaspace_tok()
    enc = encode_answer(tok, "The mother tongue of Danielle Darrieux is", "French.")
    assert enc.input_ids[0] == tok.bos_token_id and enc.start > 1
    assert answer_text(tok, "The mother tongue of Danielle Darrieux is", "French.").strip() == "French."


@pytest.mark.parametrize("make_tok", [byte_level_tok, metaspace_tok])
def test_encode_answers_equals_encode_answer_per_pair(make_tok):
    """The batched tokenizer call gives each pair the ids and span of encoding it alone."""
    tok = make_tok()
    batched = encode_answers(tok, PROMPTS, ANSWERS)
    for enc, p, a in zip(batched, PROMPTS, ANSWERS, strict=True):
        assert enc == encode_answer(tok, p, a)
        assert enc.input_ids == tuple(tok(p + " " + a)["input_ids"])  # a single, unbatched tokenizer call
    assert encode_answers(tok, [], []) == []
    with pytest.raises(ValueError, match="2 prompts but 1 answers"):
        encode_answers(tok, PROMPTS[:2], ANSWERS[:1])
    with pytest.raises(ValueError, match="empty answer"):
        encode_answers(tok, PROMPTS[:2], [ANSWERS[0], " "])


def test_span_token_straddling_the_boundary_is_an_answer_token():
    vocab = {c: i for i, c in enumerate("abcdef")} | {"ab": 6, "cd": 7, "ef": 8}
    t = Tokenizer(models.BPE(vocab=vocab, merges=[("a", "b"), ("c", "d"), ("e", "f")]))
    tok = PreTrainedTokenizerFast(tokenizer_object=t)
    enc = encode_answer(tok, "abc", "def", sep="")  # "ab" | "cd" | "ef": "cd" merges across the boundary
    assert enc.input_ids == (6, 7, 8)
    assert (enc.start, enc.end) == (1, 3)
    with pytest.raises(ValueError, match="no position predicts"):
        encode_answer(tok, "a", "bcd", sep="")  # "ab" is the first token and an answer token
    with pytest.raises(ValueError, match="empty answer"):
        encode_answer(tok, "abc", " ", sep="")


# --- teacher-forced scoring --------------------------------------------------------------------


def manual_scores(model, tok, prompt: str, answer: str):
    enc = encode_answer(tok, prompt, answer)
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        logp = F.log_softmax(model(ids).logits[0].float(), -1)  # (T, V)
    rows = torch.arange(enc.start - 1, enc.end - 1)
    labels = ids[0, enc.start : enc.end]
    return labels, logp[rows].argmax(-1), logp[rows, labels]


@pytest.mark.parametrize("side", ["left", "right"])
def test_score_answers_batched_equals_unbatched(model_tok, side):
    model, tok = model_tok
    tok.padding_side = side
    batched = score_answers(model, tok, PROMPTS, ANSWERS, batch_size=3)
    for s, p, a in zip(batched, PROMPTS, ANSWERS, strict=True):
        labels, argmax, logprobs = manual_scores(model, tok, p, a)
        assert torch.equal(s.label_ids, labels) and torch.equal(s.argmax_ids, argmax)
        torch.testing.assert_close(s.logprobs, logprobs, atol=1e-5, rtol=1e-5)
        assert s.logprobs.device.type == "cpu" and s.logprobs.dtype == torch.float32
    tok.padding_side = "right"


def test_score_answers_restores_training_flag_and_order(model_tok):
    model, tok = model_tok
    model.train()
    try:
        one = score_answers(model, tok, PROMPTS[::-1], ANSWERS[::-1], batch_size=1)
        assert model.training
    finally:
        model.eval()
    for a, b in zip(one[::-1], score_answers(model, tok, PROMPTS, ANSWERS, batch_size=4), strict=True):
        assert torch.equal(a.label_ids, b.label_ids)
        torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-5, rtol=1e-5)


def test_scores_feed_the_metrics(model_tok):
    """An unedited model agrees with itself (locality 1.0) and the scores are in range for every metric."""
    model, tok = model_tok
    pre = score_answers(model, tok, PROMPTS, ANSWERS)
    post = score_answers(model, tok, PROMPTS, ANSWERS, batch_size=1)
    for a, b in zip(pre, post, strict=True):
        assert argmax_agreement(a.argmax_ids, b.argmax_ids).value == 1.0
        assert 0.0 <= teacher_forced_token_acc(b.argmax_ids, b.label_ids).value <= 1.0
        assert target_perplexity(b.logprobs).value >= 1.0


def test_answer_logits_match_scores(model_tok):
    model, tok = model_tok
    tok.padding_side = "left"
    logits = answer_logits(model, tok, PROMPTS, ANSWERS, batch_size=2)
    scores = score_answers(model, tok, PROMPTS, ANSWERS, batch_size=4)
    for lg, s in zip(logits, scores, strict=True):
        assert lg.shape == (len(s.label_ids), len(tok))
        lp = F.log_softmax(lg, -1).gather(-1, s.label_ids[:, None]).squeeze(-1)
        torch.testing.assert_close(lp, s.logprobs, atol=1e-5, rtol=1e-5)
    tok.padding_side = "right"


# --- generation --------------------------------------------------------------------------------


def reference_greedy(model, tok, prompt: str, n: int) -> list[int]:
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    out = []
    with torch.no_grad():
        for _ in range(n):  # no cache, no padding
            nxt = int(model(ids).logits[0, -1].argmax())
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return out


@pytest.mark.parametrize("side", ["left", "right"])
def test_greedy_generate_batched_equals_unbatched(model_tok, side):
    model, tok = model_tok
    tok.padding_side = side
    n_new = [6, 3, 5, 4]
    batched = greedy_generate(model, tok, PROMPTS, max_new_tokens=n_new, batch_size=4)
    for g, p, n in zip(batched, PROMPTS, n_new, strict=True):
        ref = reference_greedy(model, tok, p, n)
        if tok.eos_token_id in ref:
            ref = ref[: ref.index(tok.eos_token_id)]
        assert list(g.token_ids) == ref
        assert g.prompt == p and g.text == tok.decode(ref, skip_special_tokens=True)
        assert greedy_generate(model, tok, [p], max_new_tokens=n, batch_size=1)[0] == g
    tok.padding_side = "right"


def test_greedy_generate_cuts_at_eos():
    tok = byte_level_tok()
    model = gpt2(tok)
    full = greedy_generate(model, tok, PROMPTS[:1], max_new_tokens=6)[0].token_ids
    tok.eos_token = tok.convert_ids_to_tokens(full[2])  # pretend the third token is eos
    cut = greedy_generate(model, tok, PROMPTS[:1], max_new_tokens=6)[0].token_ids
    assert cut == full[: full.index(full[2])]


def test_sample_generate_runs_through_eos_when_asked():
    """stop_at_eos=False (ROME's generate_fast, the fluency protocol) always fills max_length tokens."""
    tok = byte_level_tok()
    model = gpt2(tok)
    full = sample_generate(model, tok, PROMPTS[:1], seed=1, max_length=20, top_k=1)[0]
    tok.eos_token = tok.convert_ids_to_tokens(full.token_ids[2])  # pretend the third token is eos
    cut = sample_generate(model, tok, PROMPTS[:1], seed=1, max_length=20, top_k=1)[0]
    through = sample_generate(model, tok, PROMPTS[:1], seed=1, max_length=20, top_k=1, stop_at_eos=False)[0]
    assert cut.token_ids == full.token_ids[: full.token_ids.index(full.token_ids[2])]
    assert through.token_ids == full.token_ids
    assert len(tok(PROMPTS[0])["input_ids"]) + len(through.token_ids) == 20


def test_sample_generate_is_seeded_and_batch_independent(model_tok):
    model, tok = model_tok
    a = sample_generate(model, tok, PROMPTS, seed=3, max_length=24, batch_size=4)
    b = sample_generate(model, tok, PROMPTS, seed=3, max_length=24, batch_size=1)
    c = sample_generate(model, tok, PROMPTS, seed=4, max_length=24, batch_size=4)
    assert a == b
    assert a != c
    for g in a:
        assert len(tok(g.prompt)["input_ids"]) + len(g.token_ids) <= 24
        assert tok.eos_token_id not in g.token_ids


def test_sample_generate_per_prompt_seeds(model_tok):
    """With `seeds`, a prompt's sample depends on its own seed only, not on its index or its batch."""
    model, tok = model_tok
    seeds = [prompt_seed(3, 0), 11, 12, 13]
    batched = sample_generate(model, tok, PROMPTS, seeds=seeds, max_length=24, batch_size=3)
    assert batched[0] == sample_generate(model, tok, PROMPTS[:1], seed=3, max_length=24)[0]
    for p, s, g in zip(PROMPTS, seeds, batched, strict=True):
        assert sample_generate(model, tok, [p], seeds=[s], max_length=24)[0] == g
    reordered = sample_generate(model, tok, PROMPTS[::-1], seeds=seeds[::-1], max_length=24, batch_size=2)
    assert reordered[::-1] == batched
    assert sample_generate(model, tok, PROMPTS, seed=3, max_length=24) == sample_generate(
        model, tok, PROMPTS, seeds=[prompt_seed(3, i) for i in range(len(PROMPTS))], max_length=24
    )
    with pytest.raises(ValueError, match="exactly one"):
        sample_generate(model, tok, PROMPTS, max_length=24)
    with pytest.raises(ValueError, match="exactly one"):
        sample_generate(model, tok, PROMPTS, seed=1, seeds=seeds, max_length=24)
    with pytest.raises(ValueError, match="seeds"):
        sample_generate(model, tok, PROMPTS, seeds=seeds[:2], max_length=24)


def test_sample_generate_top1_is_greedy(model_tok):
    model, tok = model_tok
    sampled = sample_generate(model, tok, PROMPTS, seed=0, top_k=1, max_length=20)
    n_new = [20 - len(tok(p)["input_ids"]) for p in PROMPTS]
    assert sampled == greedy_generate(model, tok, PROMPTS, max_new_tokens=n_new)
