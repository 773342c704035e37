"""Sanitation evaluation (KnowEdit §3.5; EasyEdit `run_santinization_llama2.py`, easyedit-notes §2.6).

The reference edits the TRAIN forget facts (`K_F`: question, subject, "I don't know.") of one answer
group (`--specify_answer`; 5 groups of 16 facts) and then asks the TEST forget questions (`success`)
whose ground truth is that answer, plus the TEST retain questions (`locality`). `prepare_sanitation`
builds exactly that as edit requests: one request per K_F fact, ordered by answer group, carrying
  - `extras["forget_probes"]`: the test success questions of its group, dealt round-robin over the
    group's facts (so each test question is asked once per run), and
  - `locality["retain"]`: test retain questions dealt round-robin over all requests.
Run it with the "batch" protocol and `edit_batch_size` = the group size (16): each group is edited in
one call (FT, LoRA and MEMIT train/solve jointly, ROME applies its facts one after another, as the
reference does), evaluated, and restored. Our mean is over all five groups; the reference reports
one group per run.

Metrics per request, on 10 greedily generated tokens (the reference's `max_new_tokens=10`):
- `edit_succ`: fraction of its forget probes whose continuation (prompt excluded) contains
  `target_new`, case-insensitive (`core.metrics.sanitation_success`); absent for a request with no
  probe (more K_F facts than test questions in its group); run means are over requests;
- `locality`: position-wise match of the post-edit continuation's tokens with the PRE-edit
  continuation's tokens, captured before any edit (`sanitation_locality`);
- `fluency` (optional): n-gram entropy of a sampled continuation of the first retain question (the
  reference scores fluency on the locality prompts), else of the prompt.
Pre-edit continuations are token ids, stored in `PreEditOutputs.locality_ids` and cacheable.
A file with forget questions only (no K_F file beside it) is edited on its own questions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from torch import nn

from core.eval.evaluate import PRE_EDIT, EvalSettings, PreEditOutputs, with_fluency
from core.eval.scoring import greedy_generate
from core.metrics import sanitation_locality, sanitation_success
from core.types import EditRequest, MetricValue, Probe

RETAIN = "retain"
FORGET_PROBES = "forget_probes"
MAX_NEW_TOKENS = 10
FORGET_PARTS = ("success", "K_F")
RETAIN_PARTS = ("locality", "K_R")


def _parts(requests: Sequence[EditRequest], parts: tuple[str, ...]) -> list[EditRequest]:
    return [r for r in requests if r.extras.get("part") in parts]


def _deal(items: Sequence, n: int) -> list[list]:
    """items[j] goes to bucket j mod n."""
    buckets: list[list] = [[] for _ in range(n)]
    for j, x in enumerate(items):
        buckets[j % n].append(x)
    return buckets


def prepare_sanitation(test: Sequence[EditRequest], train: Sequence[EditRequest] | None) -> list[EditRequest]:
    """Edit requests for a Sanitation run (see the module docstring); `train` holds the K_F facts.

    Requests come from `read_knowedit_sanitation` (extras["part"]). Without `train` the test forget
    questions themselves are the edits (each its own forget probe). A K_F group with no test question
    of the same answer, or a test file without forget questions, is an error.
    """
    forget, retain = _parts(test, FORGET_PARTS), _parts(test, RETAIN_PARTS)
    if not forget:
        raise ValueError(
            f"no forget requests (parts {FORGET_PARTS}) among {len(test)} Sanitation test records"
        )
    facts = _parts(train, ("K_F",)) if train is not None else []
    if facts:
        groups = list(dict.fromkeys(f.ground_truth for f in facts))
        edits: list[EditRequest] = []
        for g in groups:
            members = [f for f in facts if f.ground_truth == g]
            questions = [q.prompt for q in forget if q.ground_truth == g]
            if not questions:
                raise ValueError(f"K_F answer group {g!r} has no test forget question with that ground truth")
            edits += [
                dataclasses.replace(f, extras={**f.extras, "group": g, FORGET_PROBES: tuple(qs)})
                for f, qs in zip(members, _deal(questions, len(members)), strict=True)
            ]
    else:
        edits = [dataclasses.replace(f, extras={**f.extras, FORGET_PROBES: (f.prompt,)}) for f in forget]
    probes = _deal([Probe(r.prompt, r.ground_truth or "") for r in retain], len(edits))
    return [
        dataclasses.replace(e, locality={RETAIN: tuple(p)} if p else {})
        for e, p in zip(edits, probes, strict=True)
    ]


def _forget_prompts(r: EditRequest) -> tuple[str, ...]:
    """The questions whose answers must become `target_new` (possibly none for a surplus K_F fact)."""
    return tuple(r.extras.get(FORGET_PROBES, (r.prompt,)))


def _retain_prompts(r: EditRequest) -> list[str]:
    return [p.prompt for p in r.locality.get(RETAIN, ())]


def _continuations(model: nn.Module, tok, prompts: Sequence[str], batch: int) -> list[tuple[int, ...]]:
    return [
        g.token_ids
        for g in greedy_generate(model, tok, prompts, max_new_tokens=MAX_NEW_TOKENS, batch_size=batch)
    ]


def sanitation_pre(
    model: nn.Module, tok, requests: Sequence[EditRequest], settings: EvalSettings
) -> PreEditOutputs:
    """Pre-edit retain continuations (token ids) and pre-edit success of every request."""
    prompts = [p for r in requests for p in _retain_prompts(r)]
    gens = iter(_continuations(model, tok, prompts, settings.batch_size))
    ids = {r.case_id: {RETAIN: tuple(next(gens) for _ in _retain_prompts(r))} for r in requests}
    pre = PreEditOutputs(locality_ids=ids)
    metrics = sanitation_evaluate(
        model, tok, requests, pre=pre, timing=PRE_EDIT, settings=settings, locality=False
    )
    return PreEditOutputs(
        locality_ids=ids, metrics={r.case_id: m for r, m in zip(requests, metrics, strict=True)}
    )


def sanitation_evaluate(
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    *,
    pre: PreEditOutputs,
    timing: str,
    settings: EvalSettings,
    locality: bool = True,
) -> list[tuple[MetricValue, ...]]:
    """[edit_succ(, locality)(, fluency)] per request on `model` as it is now, tagged `timing`."""
    questions = [q for r in requests for q in _forget_prompts(r)]
    answers = iter(
        greedy_generate(model, tok, questions, max_new_tokens=MAX_NEW_TOKENS, batch_size=settings.batch_size)
    )
    out: list[list[MetricValue]] = []
    for r in requests:
        texts = [next(answers).text for _ in _forget_prompts(r)]
        out.append([sanitation_success(texts, r.target_new, timing=timing)] if texts else [])
    if locality:
        prompts = [p for r in requests for p in _retain_prompts(r)]
        gens = iter(_continuations(model, tok, prompts, settings.batch_size))
        for r, values in zip(requests, out, strict=True):
            post = [next(gens) for _ in _retain_prompts(r)]
            if post:
                try:
                    before = pre.locality_ids[r.case_id][RETAIN]
                except KeyError:
                    raise KeyError(f"no pre-edit retain continuations for case {r.case_id!r}") from None
                values.append(sanitation_locality(list(before), post, timing=timing))
    prompts = [(_retain_prompts(r) or [r.prompt])[0] for r in requests]
    return with_fluency(out, model, tok, requests, prompts, timing, settings)
