"""Evaluation throughput against raw batched forward throughput on exactly the batches evaluation scores.

`evaluate_requests` (teacher-forced metrics: reliability, generalization, portability, locality) scores
its requests' (prompt, answer) pairs in length-sorted padded batches. `core.eval.evaluate
.teacher_forced_pairs` and `core.eval.scoring.answer_batches` rebuild those batches; "raw" is the
model's forward on them (eval mode, no grad, nothing else), "eval" is the whole `evaluate_requests`
call (tokenizing, padding, forward, picking logits, metrics). Both count the same real (non-pad)
tokens and sequences, so eval/raw is the fraction of forward throughput evaluation keeps. Evaluation
runs the output layer only where an answer token is predicted (`core.eval.scoring.predicting_logits`),
so on a head-heavy model it can beat the raw forward; "raw (scored head)" is that same reduced forward
alone, and eval/raw (scored head) is the share left for tokenizing, padding and metrics.

Two call patterns are measured: "one call" (all requests in one `evaluate_requests`, as the sequential
protocol's final evaluation) and "per request" (one call per request, as the single-edit protocol
evaluates after each edit). Runs alternate raw and eval `repeats` times after one warm-up each; the
figures are medians of wall seconds, with process-CPU seconds kept beside them.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from core.eval.evaluate import (
    EvalSettings,
    PreEditOutputs,
    compute_pre_edit,
    evaluate_requests,
    teacher_forced_pairs,
)
from core.eval.scoring import AnswerBatch, answer_batches, predicting_logits
from core.types import EditRequest

log = logging.getLogger(__name__)


def eval_batches(tok, requests: Sequence[EditRequest], batch_size: int) -> list[AnswerBatch]:
    """The padded batches one `evaluate_requests(requests, pre=...)` call runs."""
    pairs = teacher_forced_pairs(requests, locality=True)
    return answer_batches(tok, [p for p, _ in pairs], [a for _, a in pairs], batch_size=batch_size)


def forward_batches(model: nn.Module, batches: Sequence[AnswerBatch]) -> None:
    """The raw forward: the model on each batch, eval mode and no grad, outputs dropped."""
    model.eval()
    with torch.no_grad():
        for b in batches:
            model(input_ids=b.input_ids, attention_mask=b.attention_mask, position_ids=b.position_ids,
                  use_cache=False)  # fmt: skip


def scored_forward_batches(model: nn.Module, batches: Sequence[AnswerBatch]) -> None:
    """Evaluation's own forward alone: `predicting_logits` on each batch, eval mode and no grad."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for b in batches:
            predicting_logits(model, b, device)


def median_seconds(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median wall and process-CPU seconds (keys `<name>`, `<name>_cpu`) of each function.

    One untimed warm-up call each, then `repeats` rounds that alternate the functions.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for name in fns for k in (name, f"{name}_cpu")}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[k].append(time.perf_counter() - t0)
            times[f"{k}_cpu"].append(time.process_time() - c0)
    return {k: statistics.median(v) for k, v in times.items()}


def measure_throughput(
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    *,
    per_request: bool,
    batch_size: int = 32,
    repeats: int = 3,
) -> dict[str, Any]:
    """Raw forward and `evaluate_requests` throughput on the same padded batches, and their ratio."""
    settings = EvalSettings(batch_size=batch_size)
    pre: PreEditOutputs = compute_pre_edit(model, tok, requests, settings)
    calls = [[r] for r in requests] if per_request else [list(requests)]
    batches = [b for call in calls for b in eval_batches(tok, call, batch_size)]

    def evaluate() -> None:
        for call in calls:
            evaluate_requests(model, tok, call, pre=pre, timing="benchmark", settings=settings)

    secs = median_seconds(
        {"raw": lambda: forward_batches(model, batches), "eval": evaluate,
         "raw_scored": lambda: scored_forward_batches(model, batches)},
        repeats,
    )  # fmt: skip
    tokens = sum(int(b.attention_mask.sum()) for b in batches)
    padded = sum(b.input_ids.numel() for b in batches)
    sequences = sum(len(b.rows) for b in batches)
    out = {
        "mode": "per request" if per_request else "one call",
        "requests": len(requests), "calls": len(calls), "sequences": sequences, "batches": len(batches),
        "batch_size": batch_size, "tokens": tokens, "padded_tokens": padded, "repeats": repeats,
        "raw_s": secs["raw"], "eval_s": secs["eval"],
        "raw_tokens_per_s": tokens / secs["raw"], "eval_tokens_per_s": tokens / secs["eval"],
        "raw_sequences_per_s": sequences / secs["raw"], "eval_sequences_per_s": sequences / secs["eval"],
        "eval_over_raw": secs["raw"] / secs["eval"],
        "raw_cpu_s": secs["raw_cpu"], "eval_cpu_s": secs["eval_cpu"],
        "eval_over_raw_cpu": secs["raw_cpu"] / secs["eval_cpu"],
        "raw_scored_s": secs["raw_scored"], "eval_over_raw_scored": secs["raw_scored"] / secs["eval"],
    }  # fmt: skip
    log.info("%s: raw %.3fs, eval %.3fs (%.0f%%)", out["mode"], secs["raw"], secs["eval"],
             100 * out["eval_over_raw"])  # fmt: skip
    return out
