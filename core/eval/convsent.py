"""ConvSent evaluation (KnowEdit §3.5, Eqs. 12-13): sentiment edit success and KL drawdown.

Per request (one topic, read by `core.data.knowedit.read_knowedit_convsent`), from its
`extras["metric_kwargs"]`, the reference's inputs (easyedit-notes §2.5):
- `inner_all_qa`: "question <sep> answer" for every pos and neg answer about the edited topic;
  answers whose sentiment id (`all_target`) equals the target's (`inner_target`) are the target set;
- `outer_all_qa`: the same for the next topic, whose distribution must not move;
- `inner_q`: the question whose sampled continuation gives fluency.
Edit success = z_sent * z_topic (`core.metrics.convsent_edit_success`) with the PRE-edit log-probs of
the target answers captured before any edit, and locality = token-pooled KL(p_pre || p_post) on the
outer answers (`kl_drawdown`, lower is better): both fix the reference's defect of comparing the
in-place-edited model with itself (z_topic = 1 and KL = 0 for every weight-editing method).

Pre-edit captures are full logits at the outer answers' tokens (|answers| x tokens x V floats per
topic), held in memory in `PreEditOutputs.data` and never written to the pre-edit cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.eval.evaluate import PRE_EDIT, EvalSettings, PreEditOutputs, with_fluency
from core.eval.scoring import answer_logits, score_answers
from core.metrics import convsent_edit_success, kl_drawdown
from core.types import EditRequest, MetricValue

SEPARATOR = "</s>"  # the reference joins question and answer with " </s> " (read_knowedit_convsent)


@dataclass(frozen=True)
class _Pairs:
    """One topic's scored (prompt, answer) pairs: inner target/other answers and outer answers."""

    target: list[tuple[str, str]]
    other: list[tuple[str, str]]
    outer: list[tuple[str, str]]


def split_qa(joined: str, separator: str = SEPARATOR) -> tuple[str, str]:
    """("question <sep>", "answer") from "question <sep> answer" (split at the LAST separator)."""
    cut = joined.rfind(separator)
    if cut < 0:
        raise ValueError(f"no {separator!r} in ConvSent pair {joined[:80]!r}")
    return joined[: cut + len(separator)].rstrip(), joined[cut + len(separator) :].strip()


def _kwargs(r: EditRequest) -> Mapping[str, Any]:
    try:
        return r.extras["metric_kwargs"]
    except KeyError:
        raise KeyError(f"case {r.case_id!r}: ConvSent evaluation needs extras['metric_kwargs']") from None


def _pairs(r: EditRequest) -> _Pairs:
    kw = _kwargs(r)
    inner = [split_qa(x) for x in kw["inner_all_qa"]]
    if len(inner) != len(kw["all_target"]) or len(inner) != len(kw["inner_target"]):
        raise ValueError(f"case {r.case_id!r}: inner_all_qa, all_target and inner_target lengths differ")
    same = [a == t for a, t in zip(kw["all_target"], kw["inner_target"], strict=True)]
    target = [p for p, s in zip(inner, same, strict=True) if s]
    other = [p for p, s in zip(inner, same, strict=True) if not s]
    if not target or not other:
        raise ValueError(f"case {r.case_id!r}: needs answers of both sentiments")
    return _Pairs(target, other, [split_qa(x) for x in kw["outer_all_qa"]])


def _logprobs(model: nn.Module, tok, pairs: Sequence[tuple[str, str]], batch: int) -> list[torch.Tensor]:
    scores = score_answers(model, tok, [p for p, _ in pairs], [a for _, a in pairs], batch_size=batch)
    return [s.logprobs for s in scores]


def _outer_logits(model: nn.Module, tok, pairs: Sequence[tuple[str, str]], batch: int) -> list[torch.Tensor]:
    return answer_logits(model, tok, [p for p, _ in pairs], [a for _, a in pairs], batch_size=batch)


def convsent_pre(
    model: nn.Module, tok, requests: Sequence[EditRequest], settings: EvalSettings
) -> PreEditOutputs:
    """Pre-edit target-answer log-probs and outer-answer logits of every topic (run BEFORE editing)."""
    data = {}
    for r in requests:
        p = _pairs(r)
        data[r.case_id] = {
            "target_lp": _logprobs(model, tok, p.target, settings.batch_size),
            "outer_logits": _outer_logits(model, tok, p.outer, settings.batch_size),
        }
    metrics = convsent_evaluate(
        model, tok, requests, pre=PreEditOutputs(data=data), timing=PRE_EDIT, settings=settings
    )
    return PreEditOutputs(data=data, metrics={r.case_id: m for r, m in zip(requests, metrics, strict=True)})


def convsent_evaluate(
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    *,
    pre: PreEditOutputs,
    timing: str,
    settings: EvalSettings,
) -> list[tuple[MetricValue, ...]]:
    """[es, z_sent, z_topic, dd(, fluency)] per request on `model` as it is now, tagged `timing`."""
    out = []
    for r in requests:
        if r.case_id not in pre.data:
            raise KeyError(f"no pre-edit ConvSent captures for case {r.case_id!r}")
        p, captured = _pairs(r), pre.data[r.case_id]
        values = convsent_edit_success(
            _logprobs(model, tok, p.target, settings.batch_size),
            _logprobs(model, tok, p.other, settings.batch_size),
            captured["target_lp"],
            timing=timing,
        )
        post_outer = _outer_logits(model, tok, p.outer, settings.batch_size)
        values.append(kl_drawdown(captured["outer_logits"], post_outer, timing=timing))
        out.append(values)
    questions = [str(_kwargs(r)["inner_q"]) for r in requests]
    return with_fluency(out, model, tok, requests, questions, timing, settings)
