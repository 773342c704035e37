"""Error analysis of edits (KnowEdit §4, Fig. 5): edit -> greedy generation -> error type, per method.

For each method and request (single edit with restore, `core.eval.case_study.edited_generations`), the
edit prompt is continued greedily for the target's token count plus `extra_tokens`, and the
continuation is classified by `core.metrics.error_types.classify_error` against the target's tokens
(decoded one by one from ONE tokenization of `prompt + " " + target`). The pre-edit continuation is
kept beside it, and `kept_ground_truth` says whether the edited model still starts with the old answer.
`summarize_error_types` turns the rows into KnowEdit Fig. 5's shares (types among the failed edits).
An optional lexicon (`load_lexicon`: the words of a corpus) lets the classifier flag non-words.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from core.eval.case_study import answer_budget, edited_generations
from core.eval.scoring import GenerationResult, encode_answer, greedy_generate
from core.io import read_jsonl
from core.metrics.error_types import (
    CORRECT,
    ERROR_TYPES,
    classify_error,
    error_type_shares,
    starts_with_target,
)
from core.types import EditRequest

COLUMNS = (
    "method",
    "case_id",
    "prompt",
    "target_new",
    "ground_truth",
    "pre_generation",
    "generation",
    "error_type",
    "kept_ground_truth",
    "n_target_tokens",
)


def target_pieces(tok, prompt: str, answer: str) -> list[str]:
    """The decoded pieces of `answer`'s tokens in `prompt + " " + answer` (leading spaces kept)."""
    enc = encode_answer(tok, prompt, answer)
    return [tok.decode([i]) for i in enc.input_ids[enc.start : enc.end]]


def generation_pieces(tok, gen: GenerationResult) -> list[str]:
    """The decoded piece of each generated token."""
    return [tok.decode([i]) for i in gen.token_ids]


def load_lexicon(corpus_jsonl: str | Path) -> frozenset[str]:
    """Lower-cased words (runs of letters/digits) of every "text" of a JSONL corpus (the world's corpus)."""
    words: set[str] = set()
    for row in read_jsonl(corpus_jsonl):
        words.update(re.findall(r"[^\W_]+", row["text"].lower()))
    return frozenset(words)


def analyse_errors(
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    methods: Mapping[str, Any],
    *,
    extra_tokens: int = 3,
    lexicon: Collection[str] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """A tidy table (`COLUMNS`), one row per method x request, in the order of `methods` then `requests`.

    `methods` maps registry names to hparams. The model is bit-identical to its state at the call on return.
    """
    budgets = [answer_budget(tok, r, extra_tokens) for r in requests]
    pre = greedy_generate(model, tok, [r.prompt for r in requests], max_new_tokens=budgets)
    targets = [target_pieces(tok, r.prompt, r.target_new) for r in requests]
    olds = [target_pieces(tok, r.prompt, r.ground_truth) if r.ground_truth else None for r in requests]
    rows = []
    for name, hp in tqdm(methods.items(), desc="error analysis", disable=not progress):
        gens = edited_generations(model, tok, requests, name, hp, max_new_tokens=budgets)
        for r, t, old, before, (gen, _) in zip(requests, targets, olds, pre, gens, strict=True):
            pieces = generation_pieces(tok, gen)
            rows.append(
                {
                    "method": name,
                    "case_id": r.case_id,
                    "prompt": r.prompt,
                    "target_new": r.target_new,
                    "ground_truth": r.ground_truth,
                    "pre_generation": before.text,
                    "generation": gen.text,
                    "error_type": classify_error(t, pieces, lexicon=lexicon),
                    "kept_ground_truth": bool(old) and starts_with_target(old, pieces),
                    "n_target_tokens": len(t),
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def summarize_error_types(table: pd.DataFrame) -> pd.DataFrame:
    """Tidy Fig. 5 table: per method and error type, the count and the share among failed edits.

    Columns: method, error_type, count, share, n_cases, n_failed (methods in first-seen order).
    """
    out = []
    for method, rows in table.groupby("method", sort=False):
        types = list(rows["error_type"])
        shares = {m.name.removeprefix("error/"): m.value for m in error_type_shares(types)}
        failed = sum(t != CORRECT for t in types)
        out += [
            {
                "method": method,
                "error_type": t,
                "count": types.count(t),
                "share": shares[t],
                "n_cases": len(types),
                "n_failed": failed,
            }
            for t in ERROR_TYPES
        ]
    return pd.DataFrame(out, columns=["method", "error_type", "count", "share", "n_cases", "n_failed"])


def top_error_types(shares: pd.DataFrame) -> pd.DataFrame:
    """Per method (and "all", the failed edits of every method pooled): its most frequent error type.

    `shares` is `summarize_error_types` output. Columns: method, top_type, share, n_failed; a method
    with no failed edit has a missing (NA) top_type. Ties go to the first type of `ERROR_TYPES`.
    """
    pooled = shares.groupby("error_type", sort=False)["count"].sum()
    per_method = {
        m: rows.set_index("error_type")["count"] for m, rows in shares.groupby("method", sort=False)
    }
    out = []
    for method, counts in [*per_method.items(), ("all", pooled)]:
        counts = counts.reindex(list(ERROR_TYPES))
        total = int(counts.sum())
        top = counts.idxmax() if total else None
        out.append(
            {
                "method": method,
                "top_type": top,
                "share": counts[top] / total if total else 0.0,
                "n_failed": total,
            }
        )
    return pd.DataFrame(out, columns=["method", "top_type", "share", "n_failed"])
