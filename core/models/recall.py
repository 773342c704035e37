"""Batched greedy-generation recall: does the model complete each probe prompt with its answer?

Exact-match rule (`matches_answer`): decode the greedily generated continuation (special tokens
dropped), strip surrounding whitespace; it matches when it begins with the stripped answer and the
answer is followed by the end of the text or by a character that is not alphanumeric (space,
punctuation). So "Paris." and "Paris is" match "Paris"; "Parisian" and "Pa" do not; case matters.
The continuation is `max_new_tokens` long: the longest answer of the batch in tokens plus
`extra_tokens` (default 2), enough to see the character after the answer.

Prompts are batched with left padding (`generate` derives positions from the attention mask), in
length-sorted batches of `batch_size`; results come back in the input order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import torch
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from core.types import Probe

log = logging.getLogger(__name__)


def matches_answer(generated: str, answer: str) -> bool:
    """The exact-match rule above; an empty answer never matches."""
    text, ans = generated.strip(), answer.strip()
    if not ans or not text.startswith(ans):
        return False
    rest = text[len(ans) :]
    return rest == "" or not rest[0].isalnum()


@torch.no_grad()
def greedy_continuations(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> list[str]:
    """Greedy continuations of `prompts` (decoded new tokens only), in input order."""
    device = device if device is not None else model.device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    lengths = [len(ids) for ids in tokenizer(list(prompts))["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    out: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([prompts[i] for i in idx], padding=True, padding_side="left", return_tensors="pt")
        gen = model.generate(
            input_ids=enc["input_ids"].to(device),
            attention_mask=enc["attention_mask"].to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=pad_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        for i, text in zip(idx, texts, strict=True):
            out[i] = text
    return out


def answer_budget(tokenizer: PreTrainedTokenizerBase, answers: Sequence[str], extra_tokens: int = 2) -> int:
    """New tokens to generate: the longest " " + answer in tokens, plus `extra_tokens`."""
    ids = tokenizer([" " + a.strip() for a in answers], add_special_tokens=False)["input_ids"]
    return max(len(x) for x in ids) + extra_tokens


def probe_hits(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    probes: Sequence[Probe],
    *,
    batch_size: int = 64,
    extra_tokens: int = 2,
    device: str | torch.device | None = None,
) -> list[tuple[str, bool]]:
    """(continuation, matched) for each probe, in input order."""
    if not probes:
        return []
    budget = answer_budget(tokenizer, [p.answer for p in probes], extra_tokens)
    texts = greedy_continuations(
        model, tokenizer, [p.prompt for p in probes], max_new_tokens=budget, batch_size=batch_size, device=device
    )
    return [(t, matches_answer(t, p.answer)) for t, p in zip(texts, probes, strict=True)]


def recall_by_kind(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    probe_sets: Mapping[str, Sequence[Probe]],
    *,
    batch_size: int = 64,
    extra_tokens: int = 2,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Fraction of probes answered (greedy exact match) per probe kind; empty kinds are left out."""
    result: dict[str, float] = {}
    for kind, probes in probe_sets.items():
        if not probes:
            log.warning("probe kind %r is empty; left out of recall", kind)
            continue
        hits = probe_hits(model, tokenizer, probes, batch_size=batch_size, extra_tokens=extra_tokens, device=device)
        result[kind] = sum(ok for _, ok in hits) / len(hits)
    return result
