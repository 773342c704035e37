"""Batched model scoring for metrics: answer spans, teacher-forced scores, answer logits, generation.

This is the only module that runs the model for metrics; `core.metrics` turns its outputs into
`MetricValue`s. Three jobs:
1. Answer spans from ONE tokenization (fixes easyedit-notes §10.3: EasyEdit tokenises the prompt and
   `prompt + " " + target` separately and counts tokens, which breaks on BPE merges across the
   boundary and when pad == eos). We encode `prompt + sep + answer` with offsets; the answer part is
   the characters [a0, len(text)) with a0 = len(prompt + sep). Answer tokens are the non-special
   tokens whose character span ENDS after a0; since the answer is the text's suffix they are the
   last non-special tokens. Boundary rule: a token that straddles the boundary (it starts in the
   prompt or the separator and ends inside the answer, e.g. GPT-2's " Paris" or a merge of the
   prompt's last characters with the answer's first) IS an answer token: it is a label, predicted
   from the position before it, so the whole answer is always scored and no answer character is
   ever teacher-forced as context. Special tokens (BOS, an appended EOS) are never answer tokens;
   whitespace tokens that trimmed offsets report as zero-width stay answer tokens inside the answer.
2. Teacher-forced scoring (`score_answers`, `answer_logits`): one forward per batch, batches sorted by
   length, the output layer only at the positions that predict answer tokens (`predicting_logits`),
   explicit position ids from the attention mask, so left- and right-padded tokenizers give
   the same numbers as unbatched runs (GPT-2 absolute positions included).
3. Generation (`greedy_generate`, `sample_generate`): left-padded, KV-cached, deterministic; sampling
   is top-k (k=5 as ROME/EasyEdit `generate_fast` for fluency) with one seeded torch.Generator per
   prompt, so a prompt's sample depends on its own seed (given per prompt, or derived from (seed, its
   index)) and not on batching.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.modules.module import _global_forward_hooks, _global_forward_pre_hooks
from transformers import PreTrainedModel

from core.models.arch import UnsupportedArchitectureError, get_arch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedAnswer:
    """Token ids of `prompt + sep + answer` and the answer tokens' index range [start, end)."""

    input_ids: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class AnswerScore:
    """Teacher-forced results at the answer tokens; all (n_answer_tokens,) CPU tensors."""

    label_ids: torch.Tensor  # int64, the answer token ids
    argmax_ids: torch.Tensor  # int64, argmax of the distribution predicting each answer token
    logprobs: torch.Tensor  # float32, log p(label_t | tokens before t)


@dataclass(frozen=True)
class GenerationResult:
    """A continuation only (the prompt is not included in `text` or `token_ids`); eos is cut off."""

    prompt: str
    text: str
    token_ids: tuple[int, ...]


def encode_answer(
    tok, prompt: str, answer: str, *, sep: str = " ", add_special_tokens: bool = True
) -> EncodedAnswer:
    """Encode `prompt + sep + answer` once and locate the answer tokens by character offsets (rule above)."""
    return encode_answers(tok, [prompt], [answer], sep=sep, add_special_tokens=add_special_tokens)[0]


def encode_answers(
    tok, prompts: Sequence[str], answers: Sequence[str], *, sep: str = " ", add_special_tokens: bool = True
) -> list[EncodedAnswer]:
    """`encode_answer` of each pair, with one batched tokenizer call (the same ids and spans)."""
    if not getattr(tok, "is_fast", False):
        raise TypeError("answer spans need a fast tokenizer (character offsets)")
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    for prompt, answer in zip(prompts, answers, strict=True):
        if not answer.strip():
            raise ValueError(f"empty answer for prompt {prompt!r}")
    if not prompts:
        return []
    texts = [p + sep + a for p, a in zip(prompts, answers, strict=True)]
    enc = tok(
        texts,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        add_special_tokens=add_special_tokens,
    )
    columns = enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]
    return [_locate_answer(t, a, *row) for t, a, *row in zip(texts, answers, *columns, strict=True)]


def _locate_answer(text: str, answer: str, ids, offsets, special_mask) -> EncodedAnswer:
    """The answer span of one encoded `text` that ends with `answer` (the rule in the module docstring)."""
    a0, a1 = len(text) - len(answer), len(text)
    real = [i for i, special in enumerate(special_mask) if not special]
    idx = [i for i in real if offsets[i][1] > a0]
    if not idx or idx != list(range(idx[0], real[-1] + 1)):
        raise ValueError(f"answer tokens of {text!r} are missing or not contiguous: {idx}")
    lead, trail = len(answer) - len(answer.lstrip()), len(answer) - len(answer.rstrip())
    if offsets[idx[0]][0] > a0 + lead or offsets[idx[-1]][1] < a1 - trail:
        raise ValueError(f"answer tokens of {text!r} do not cover the answer {answer!r}")
    if idx[0] == 0:
        raise ValueError(f"the first token of {text!r} is an answer token: no position predicts it")
    return EncodedAnswer(tuple(ids), idx[0], idx[-1] + 1)


def _device(model: torch.nn.Module, device: torch.device | str | None) -> torch.device:
    return torch.device(device) if device is not None else next(model.parameters()).device


def _pad_id(tok) -> int:
    for cand in (tok.pad_token_id, tok.eos_token_id):
        if cand is not None:
            return int(cand)
    return 0


def _length_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices sorted by length (stable), cut into batches; callers restore the original order."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for k in range(0, len(order), batch_size):
        yield order[k : k + batch_size]


def _pad(seqs: Sequence[Sequence[int]], pad_id: int, side: str) -> tuple[torch.Tensor, ...]:
    """(ids, attention_mask, position_ids, shift) with shift[r] = column of row r's first real token."""
    width, left = max(len(s) for s in seqs), side == "left"
    pads = [[pad_id] * (width - len(s)) for s in seqs]
    ids = torch.tensor([p + list(s) if left else list(s) + p for s, p in zip(seqs, pads, strict=True)])
    lens = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    shift = width - lens if left else torch.zeros_like(lens)
    col = torch.arange(width)
    mask = ((col >= shift[:, None]) & (col < (shift + lens)[:, None])).long()  # (B, T)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)  # absolute positions of real tokens, 0 on pads
    return ids.long(), mask, pos, shift


@contextmanager
def _inference(model: torch.nn.Module) -> Iterator[None]:
    """eval() and no_grad for the block; restores every module's training flag after.

    A model already in eval mode is not walked with `eval()`/`train()` (their `__setattr__` per module is
    a measurable share of a small model's evaluation call).
    """
    modules = list(model.modules())
    flags = [m.training for m in modules]
    if any(flags):
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, flag in zip(modules, flags, strict=True):
            if m.training != flag:
                m.training = flag


@dataclass(frozen=True)
class AnswerBatch:
    """One padded teacher-forcing batch exactly as `score_answers` runs it; (B, T) CPU tensors."""

    rows: tuple[int, ...]  # the batch's pairs, as indices into the caller's lists
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor  # from the mask: real tokens count 0, 1, ... on either padding side
    is_label: torch.Tensor  # bool, True at the answer tokens


def answer_batches(
    tok, prompts: Sequence[str], answers: Sequence[str], *, sep: str = " ", batch_size: int = 32
) -> list[AnswerBatch]:
    """The padded batches `score_answers` and `answer_logits` run for these pairs (length-sorted)."""
    encs = encode_answers(tok, prompts, answers, sep=sep)
    side, batches = getattr(tok, "padding_side", "right"), []
    for rows in _length_batches([len(e.input_ids) for e in encs], batch_size):
        ids, mask, pos, shift = _pad([encs[i].input_ids for i in rows], _pad_id(tok), side)
        start = shift + torch.tensor([encs[i].start for i in rows])
        end = shift + torch.tensor([encs[i].end for i in rows])
        col = torch.arange(ids.shape[1])
        is_label = (col >= start[:, None]) & (col < end[:, None])  # (B, T)
        batches.append(AnswerBatch(tuple(rows), ids, mask, pos, is_label))
    return batches


def _answer_batches(
    model, tok, prompts: Sequence[str], answers: Sequence[str], sep: str, batch_size: int, device
) -> Iterator[tuple[tuple[int, ...], torch.Tensor, torch.Tensor, list[int]]]:
    """Per batch: (indices, label ids (N,), logits (N, V) predicting them, answer length of each row).

    The N answer tokens of the batch's rows are concatenated in row order.
    """
    dev = _device(model, device)
    with _inference(model):
        for b in answer_batches(tok, prompts, answers, sep=sep, batch_size=batch_size):
            pred_mask = b.is_label[:, 1:]  # position t predicts token t + 1
            logits = predicting_logits(model, b, dev).float().cpu()  # (N, V)
            logger.debug("scored %d answers, padded width %d", len(b.rows), b.input_ids.shape[1])
            yield b.rows, b.input_ids[:, 1:][pred_mask], logits, pred_mask.sum(1).tolist()


def plain_head(model: torch.nn.Module) -> torch.nn.Module | None:
    """The output layer when the model's logits are exactly `head(base_model(...).last_hidden_state)`, else None.

    True of the transformers causal LMs of the supported architectures (`core.models.arch`), as long as
    nothing is hooked on the model's own forward: in-context editors and SERAC hook it to rewrite inputs
    and logits, so they must run the whole model. Hooks inside the model (edited MLPs, adapters) run either
    way.
    """
    hooks = (model._forward_hooks, model._forward_pre_hooks, _global_forward_hooks, _global_forward_pre_hooks)
    if not isinstance(model, PreTrainedModel) or model.base_model is model or any(hooks):
        return None
    try:
        get_arch(model)
    except UnsupportedArchitectureError:
        return None
    return model.get_output_embeddings()


def predicting_logits(model: torch.nn.Module, batch: AnswerBatch, device: torch.device) -> torch.Tensor:
    """(N, V) logits at the positions predicting the batch's answer tokens, in row-major order (no grad).

    With a `plain_head` the last column, which only ever holds a label, is not fed (causal attention:
    nothing before it reads it), and the output layer runs at the N predicting positions only instead of
    at all B x T tokens (on a 50k vocabulary it is most of a small model's forward). Otherwise the whole
    batch goes through the whole model and its logits are picked: hooks on the model's forward may read
    every input token (SERAC's scope classifier reads the decoded prompt + answer). Both equal the full
    forward's logits up to float rounding.
    """
    pred_mask = batch.is_label[:, 1:].to(device)
    head = plain_head(model)
    width = batch.input_ids.shape[1] - (head is not None)
    inputs = {
        "input_ids": batch.input_ids[:, :width].to(device),
        "attention_mask": batch.attention_mask[:, :width].to(device),
        "position_ids": batch.position_ids[:, :width].to(device),
        "use_cache": False,
    }
    if head is None:
        return model(**inputs).logits[:, :-1][pred_mask]
    return head(model.base_model(**inputs).last_hidden_state[pred_mask])


def score_answers(
    model: torch.nn.Module,
    tok,
    prompts: Sequence[str],
    answers: Sequence[str],
    *,
    sep: str = " ",
    batch_size: int = 32,
    device: torch.device | str | None = None,
) -> list[AnswerScore]:
    """Teacher-forced label ids, argmax ids and log-probs at the answer tokens of `prompt + sep + answer`.

    Invariant: equal (up to float noise) to scoring each pair alone, for any batch size and padding side.
    """
    results: list[AnswerScore | None] = [None] * len(prompts)
    batches = _answer_batches(model, tok, prompts, answers, sep, batch_size, device)
    for rows, labels, logits, counts in batches:
        logprobs = F.log_softmax(logits, -1).gather(-1, labels[:, None]).squeeze(-1)  # (N,)
        per_row = labels.split(counts), logits.argmax(-1).split(counts), logprobs.split(counts)
        for i, lab, am, lp in zip(rows, *per_row, strict=True):
            results[i] = AnswerScore(lab, am, lp)
    return results  # type: ignore[return-value]


def answer_logits(
    model: torch.nn.Module,
    tok,
    prompts: Sequence[str],
    answers: Sequence[str],
    *,
    sep: str = " ",
    batch_size: int = 32,
    device: torch.device | str | None = None,
) -> list[torch.Tensor]:
    """Full float32 CPU logits (n_answer_tokens, V) at the positions predicting each answer token (for KL)."""
    results: list[torch.Tensor | None] = [None] * len(prompts)
    batches = _answer_batches(model, tok, prompts, answers, sep, batch_size, device)
    for rows, _, logits, counts in batches:
        for i, lg in zip(rows, logits.split(counts), strict=True):
            results[i] = lg.clone()
    return results  # type: ignore[return-value]


Picker = Callable[[torch.Tensor, list[int]], torch.Tensor]  # (logits (B, V), original indices) -> ids (B,)


def _decode(
    model,
    tok,
    prompts: Sequence[str],
    n_new: Sequence[int],
    batch_size: int,
    device,
    pick: Picker,
    stop_at_eos: bool = True,
):
    """Left-padded, KV-cached decoding of n_new[i] tokens for prompt i; cut at the first eos if `stop_at_eos`.

    With `stop_at_eos=False` decoding runs through eos tokens (ROME's `generate_fast`); they stay in
    `token_ids` and are dropped from `text` (decoded with `skip_special_tokens`).
    """
    dev, pad, eos = _device(model, device), _pad_id(tok), (tok.eos_token_id if stop_at_eos else None)
    encs = [list(tok(p)["input_ids"]) for p in prompts]
    results: list[GenerationResult | None] = [None] * len(prompts)
    with _inference(model):
        for rows in _length_batches([len(e) for e in encs], batch_size):
            ids, mask, pos, _ = _pad([encs[i] for i in rows], pad, "left")
            ids, mask, pos = ids.to(dev), mask.to(dev), pos.to(dev)
            steps = max(n_new[i] for i in rows)
            out = torch.full((len(rows), max(steps, 0)), pad, dtype=torch.long)
            done = torch.zeros(len(rows), dtype=torch.bool)
            past, cur, cur_pos = None, ids, pos
            for t in range(steps):
                o = model(
                    input_ids=cur,
                    attention_mask=mask,
                    position_ids=cur_pos,
                    past_key_values=past,
                    use_cache=True,
                )
                past = o.past_key_values
                nxt = pick(o.logits[:, -1].float(), rows).cpu()  # (B,)
                out[:, t] = nxt
                done |= nxt == eos if eos is not None else torch.zeros_like(done)
                if bool(done.all()):
                    break
                cur, cur_pos = nxt[:, None].to(dev), cur_pos[:, -1:] + 1
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            for r, i in enumerate(rows):
                toks = out[r, : n_new[i]].tolist()
                if eos is not None and eos in toks:
                    toks = toks[: toks.index(eos)]
                text = tok.decode(toks, skip_special_tokens=True)
                results[i] = GenerationResult(prompts[i], text, tuple(toks))
    return results


def greedy_generate(
    model: torch.nn.Module,
    tok,
    prompts: Sequence[str],
    *,
    max_new_tokens: int | Sequence[int],
    batch_size: int = 32,
    device: torch.device | str | None = None,
) -> list[GenerationResult]:
    """Greedy continuations (argmax, first index on ties); `max_new_tokens` may be one int per prompt."""
    n_new = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(n_new) != len(prompts) or any(n < 0 for n in n_new):
        raise ValueError("need one max_new_tokens >= 0 per prompt")
    return _decode(model, tok, prompts, n_new, batch_size, device, lambda logits, rows: logits.argmax(-1))


def prompt_seed(seed: int, index: int) -> int:
    """The generator seed `sample_generate(..., seed=seed)` gives prompt `index` (pass it in `seeds=`)."""
    return seed * 1_000_003 + index


def sample_generate(
    model: torch.nn.Module,
    tok,
    prompts: Sequence[str],
    *,
    seed: int | None = None,
    seeds: Sequence[int] | None = None,
    top_k: int = 5,
    max_length: int = 100,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    stop_at_eos: bool = True,
) -> list[GenerationResult]:
    """Top-k sampled continuations until prompt + continuation reach `max_length` tokens (`generate_fast`).

    Give exactly one of `seed` and `seeds`. Prompt i samples from its own torch.Generator, seeded with
    `seeds[i]`, or with `prompt_seed(seed, i)` when one `seed` is given; so results are deterministic and
    independent of batching (up to float noise in the logits), and with `seeds` a prompt's sample does not
    depend on its index either: `sample_generate([p], seed=s)` equals the row of p in
    `sample_generate([..., p, ...], seeds=[..., prompt_seed(s, 0), ...])`. A sampled eos ends the
    continuation unless `stop_at_eos=False`, which samples through it as `generate_fast` does (the
    KnowEdit fluency protocol: always `max_length` tokens). For the KnowEdit fluency metric, score `prompt + text` (the
    reference decodes the prompt with the continuation).
    """
    if (seed is None) == (seeds is None):
        raise ValueError("give exactly one of seed and seeds")
    if seeds is None:
        seeds = [prompt_seed(seed, i) for i in range(len(prompts))]  # type: ignore[arg-type]
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    n_new = [max(0, max_length - len(tok(p)["input_ids"])) for p in prompts]

    def pick(logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
        top_v, top_i = logits.topk(min(top_k, logits.shape[-1]), dim=-1)  # (B, k)
        probs, top_i = top_v.softmax(-1).cpu(), top_i.cpu()
        j = torch.stack([torch.multinomial(probs[r], 1, generator=gens[i]) for r, i in enumerate(rows)])
        return top_i.gather(-1, j).squeeze(-1)

    return _decode(model, tok, prompts, n_new, batch_size, device, pick, stop_at_eos)
