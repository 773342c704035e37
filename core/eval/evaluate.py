"""Evaluate edit requests on a model: reliability, generalization, portability, locality, fluency.

Definitions (easyedit-notes §2; KnowEdit §3.5; WISE Eq. 9), each computed by one `core.metrics` function:
- reliability: teacher-forced token accuracy of `target_new` after `prompt` (EasyEdit `rewrite_acc`);
- generalization: the same on each rephrase, averaged over rephrases (`rephrase_acc`);
- portability/<key>: token accuracy against each probe's answer, averaged over the key's probes;
  `portability` is the mean over keys (KnowEdit nesting: probes, then keys, then cases);
- locality/<key>: agreement of post-edit argmax ids with the PRE-edit argmax ids captured before any
  edit (`PreEditOutputs`), at the answer tokens of `probe.prompt + " " + probe.answer` (§2.2);
  `locality` is the mean over keys;
- optional `reliability_em`/`generalization_em`: greedy generation starts with the target ids
  (KnowEdit Eq. 10, Edit Succ.); optional `fluency`: (H2 + 2 H3)/3 of a top-5 sample of 100 tokens.

All teacher-forced pairs of a call are scored in one batched `score_answers` pass, and all fluency
samples are drawn in one batched `sample_generate` call with per-request seeds. Every value carries its
protocol tag and the caller's `timing` tag. Nothing here depends on which method edited the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from core.eval.scoring import AnswerScore, greedy_generate, prompt_seed, sample_generate, score_answers
from core.metrics import (
    argmax_agreement,
    greedy_token_exact_match,
    mean_metric,
    ngram_fluency,
    teacher_forced_token_acc,
)
from core.types import EditRequest, MetricValue

PRE_EDIT = "pre_edit"
SINGLE_EDIT_RESTORE = "single_edit_restore"
BATCH_EDIT_RESTORE = "batch_edit_restore"
AFTER_OWN_EDIT = "after_own_edit"
AFTER_ALL_T = "after_all_T"

LocalityIds = Mapping[str, tuple[tuple[int, ...], ...]]  # locality key -> argmax ids per probe


@dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """What is evaluated and how; part of the pre-edit cache key. `batch_size` is the scoring batch."""

    batch_size: int = 32
    greedy: bool = False
    fluency: bool = False
    fluency_seed: int = 0
    fluency_max_length: int = 100  # prompt + continuation tokens, as EasyEdit's `max_out_len`

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.fluency_max_length < 1:
            raise ValueError("batch_size and fluency_max_length must be >= 1")


@dataclass(frozen=True)
class PreEditOutputs:
    """What must be captured before editing: locality argmax ids and pre-edit metrics, by case id.

    `data` holds suite-specific pre-edit captures by case id (e.g. ConvSent's pre-edit logits,
    `core.eval.convsent`); it is kept in memory only, so suites that fill it are not cached on disk.
    """

    locality_ids: Mapping[str, LocalityIds] = field(default_factory=dict)
    metrics: Mapping[str, tuple[MetricValue, ...]] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (ids as lists, metrics as dicts); `data` must be empty."""
        if self.data:
            raise ValueError("PreEditOutputs with suite data (tensors) cannot be written as JSON")
        return {
            "locality_ids": {
                c: {k: [list(p) for p in probes] for k, probes in keys.items()}
                for c, keys in self.locality_ids.items()
            },
            "metrics": {c: [asdict(m) for m in ms] for c, ms in self.metrics.items()},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PreEditOutputs:
        """Inverse of `to_json`."""
        return cls(
            locality_ids={
                c: {k: tuple(tuple(int(i) for i in p) for p in probes) for k, probes in keys.items()}
                for c, keys in d["locality_ids"].items()
            },
            metrics={c: tuple(MetricValue(**m) for m in ms) for c, ms in d["metrics"].items()},
        )


@dataclass(frozen=True)
class _Job:
    request: int
    kind: str  # "rel", "gen", "port", "loc"
    key: str
    prompt: str
    answer: str


def _jobs(requests: Sequence[EditRequest], *, locality: bool) -> list[_Job]:
    jobs = []
    for i, r in enumerate(requests):
        jobs.append(_Job(i, "rel", "", r.prompt, r.target_new))
        jobs += [_Job(i, "gen", "", p, r.target_new) for p in r.rephrases]
        for key, probes in r.portability.items():
            jobs += [_Job(i, "port", key, p.prompt, p.answer) for p in probes]
        if locality:
            for key, probes in r.locality.items():
                jobs += [_Job(i, "loc", key, p.prompt, p.answer) for p in probes]
    return jobs


def teacher_forced_pairs(requests: Sequence[EditRequest], *, locality: bool = True) -> list[tuple[str, str]]:
    """The (prompt, answer) pairs `evaluate_requests` scores in its one batched pass, in its order.

    `locality=True` is a call with `pre` given; with `core.eval.scoring.answer_batches` this gives the
    exact padded batches of that call (used by the benchmarks).
    """
    return [(j.prompt, j.answer) for j in _jobs(requests, locality=locality)]


def _score(model: nn.Module, tok, jobs: Sequence[_Job], batch_size: int) -> list[AnswerScore]:
    if not jobs:
        return []
    return score_answers(
        model, tok, [j.prompt for j in jobs], [j.answer for j in jobs], batch_size=batch_size
    )


def _per_key(prefix: str, values: Mapping[str, list[MetricValue]]) -> list[MetricValue]:
    """`prefix/<key>` means over probes, then `prefix` as the mean over keys (when any key has probes)."""
    per_key = [mean_metric(v, name=f"{prefix}/{k}") for k, v in values.items() if v]
    return per_key + ([mean_metric(per_key, name=prefix)] if per_key else [])


def _fluency_seed(seed: int, case_id: str) -> int:
    """A per-request sampling seed, so a request's sample does not depend on the batch it is in."""
    digest = hashlib.blake2b(
        f"{seed}:{case_id}".encode(), digest_size=4
    ).digest()  # 32 bits: scoring scales it
    return int.from_bytes(digest, "big")


def compute_locality_ids(
    model: nn.Module, tok, requests: Sequence[EditRequest], *, batch_size: int = 32
) -> dict[str, LocalityIds]:
    """Argmax ids at the answer tokens of every locality probe, by case id then key (run BEFORE editing)."""
    jobs = [j for j in _jobs(requests, locality=True) if j.kind == "loc"]
    out: dict[str, dict[str, list[tuple[int, ...]]]] = {r.case_id: {} for r in requests}
    for job, s in zip(jobs, _score(model, tok, jobs, batch_size), strict=True):
        out[requests[job.request].case_id].setdefault(job.key, []).append(tuple(s.argmax_ids.tolist()))
    return {c: {k: tuple(v) for k, v in keys.items()} for c, keys in out.items()}


def evaluate_requests(
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    *,
    pre: PreEditOutputs | None,
    timing: str,
    settings: EvalSettings | None = None,
) -> list[tuple[MetricValue, ...]]:
    """Metrics of each request on `model` as it is now, tagged with `timing`.

    With `pre=None` locality is skipped (this is how the pre-edit metrics themselves are computed);
    otherwise `pre.locality_ids` must hold every request's locality probes. `settings=None` means
    `EvalSettings()`.
    """
    settings = settings if settings is not None else EvalSettings()
    jobs = _jobs(requests, locality=pre is not None)
    scores = _score(model, tok, jobs, settings.batch_size)
    rel: dict[int, MetricValue] = {}
    labels: dict[int, list[AnswerScore]] = {i: [] for i in range(len(requests))}  # reliability then rephrases
    gen: dict[int, list[MetricValue]] = {i: [] for i in range(len(requests))}
    port: dict[int, dict[str, list[MetricValue]]] = {i: {} for i in range(len(requests))}
    loc: dict[int, dict[str, list[MetricValue]]] = {i: {} for i in range(len(requests))}
    probe_index: dict[tuple[int, str], int] = {}
    for job, s in zip(jobs, scores, strict=True):
        if job.kind == "rel":
            rel[job.request] = teacher_forced_token_acc(
                s.argmax_ids, s.label_ids, name="reliability", timing=timing
            )
            labels[job.request].insert(0, s)
        elif job.kind == "gen":
            gen[job.request].append(teacher_forced_token_acc(s.argmax_ids, s.label_ids, timing=timing))
            labels[job.request].append(s)
        elif job.kind == "port":
            acc = teacher_forced_token_acc(s.argmax_ids, s.label_ids, timing=timing)
            port[job.request].setdefault(job.key, []).append(acc)
        else:
            assert pre is not None
            case_id = requests[job.request].case_id
            j = probe_index[job.request, job.key] = probe_index.get((job.request, job.key), -1) + 1
            try:
                pre_ids = pre.locality_ids[case_id][job.key][j]
            except (KeyError, IndexError):
                raise KeyError(
                    f"no pre-edit locality ids for case {case_id!r}, key {job.key!r}, probe {j}"
                ) from None
            agree = argmax_agreement(pre_ids, s.argmax_ids, timing=timing)
            loc[job.request].setdefault(job.key, []).append(agree)
    greedy = _greedy_em(model, tok, requests, labels, timing, settings) if settings.greedy else {}
    fluency = (
        sampled_fluency(
            model, tok, [r.prompt for r in requests], [r.case_id for r in requests], timing, settings
        )
        if settings.fluency
        else []
    )
    results = []
    for i in range(len(requests)):
        values = [rel[i]]
        if gen[i]:
            values.append(mean_metric(gen[i], name="generalization"))
        values += _per_key("portability", port[i]) + _per_key("locality", loc[i]) + greedy.get(i, [])
        if settings.fluency:
            values.append(fluency[i])
        results.append(tuple(values))
    return results


def _greedy_em(
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    labels: Mapping[int, list[AnswerScore]],
    timing: str,
    settings: EvalSettings,
) -> dict[int, list[MetricValue]]:
    """`reliability_em` and `generalization_em`: greedy ids of prompt / rephrases start with the target ids."""
    prompts, targets, owners = [], [], []
    for i, r in enumerate(requests):
        for k, (prompt, s) in enumerate(zip((r.prompt, *r.rephrases), labels[i], strict=True)):
            prompts.append(prompt)
            targets.append(s.label_ids)
            owners.append((i, k))
    gens = greedy_generate(
        model, tok, prompts, max_new_tokens=[len(t) for t in targets], batch_size=settings.batch_size
    )
    hits: dict[int, list[MetricValue]] = {}
    for (i, _), g, t in zip(owners, gens, targets, strict=True):
        hits.setdefault(i, []).append(greedy_token_exact_match(g.token_ids, t, timing=timing))
    out = {}
    for i, h in hits.items():
        out[i] = [mean_metric(h[:1], name="reliability_em")]
        if len(h) > 1:
            out[i].append(mean_metric(h[1:], name="generalization_em"))
    return out


def sampled_fluency(
    model: nn.Module,
    tok,
    prompts: Sequence[str],
    case_ids: Sequence[str],
    timing: str,
    settings: EvalSettings,
) -> list[MetricValue]:
    """Fluency of one top-5 sample per prompt (EasyEdit scores the decoded prompt + continuation).

    As ROME's `generate_fast`, sampling runs through eos to `fluency_max_length` tokens: a world LM
    ends its short answer with eos, and stopping there would score little more than the prompt.

    All prompts are sampled in one batched call; prompt i's generator is seeded from (fluency_seed,
    case_ids[i]) alone, so each value equals sampling that prompt by itself (`sample_generate([p],
    seeds=[prompt_seed(_fluency_seed(...), 0)])`), whatever else is in the call.
    """
    seeds = [prompt_seed(_fluency_seed(settings.fluency_seed, c), 0) for c in case_ids]
    gens = sample_generate(
        model, tok, list(prompts), seeds=seeds, max_length=settings.fluency_max_length,
        batch_size=settings.batch_size, stop_at_eos=False,
    )  # fmt: skip
    return [ngram_fluency([p + g.text], timing=timing) for p, g in zip(prompts, gens, strict=True)]


def with_fluency(
    values: Sequence[Sequence[MetricValue]],
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    prompts: Sequence[str],
    timing: str,
    settings: EvalSettings,
) -> list[tuple[MetricValue, ...]]:
    """`values` per request as tuples, each followed by the fluency of its prompt when `settings.fluency`."""
    if not settings.fluency:
        return [tuple(v) for v in values]
    flu = sampled_fluency(model, tok, prompts, [r.case_id for r in requests], timing, settings)
    return [(*v, f) for v, f in zip(values, flu, strict=True)]


def compute_pre_edit(
    model: nn.Module, tok, requests: Sequence[EditRequest], settings: EvalSettings | None = None
) -> PreEditOutputs:
    """Pre-edit metrics (timing "pre_edit", no locality) and locality argmax ids of the unedited model."""
    settings = settings if settings is not None else EvalSettings()
    metrics = evaluate_requests(model, tok, requests, pre=None, timing=PRE_EDIT, settings=settings)
    return PreEditOutputs(
        locality_ids=compute_locality_ids(model, tok, requests, batch_size=settings.batch_size),
        metrics={r.case_id: m for r, m in zip(requests, metrics, strict=True)},
    )
