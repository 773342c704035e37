"""General abilities after sequential edits (KnowEdit Table 5) and continual-editing curves (KnowEdit Fig. 4).

KnowEdit §4.2 applies five sequential Wiki_recent edits to LLaMA-2-chat and scores six OpenCompass
benchmarks; Fig. 4 plots edit success, portability and locality after T = 10 ... 1000 sequential edits.
Here the benchmarks are the world tasks of `core.world.tasks`, scored in ONE batched teacher-forced pass
(`core.eval.scoring.score_answers`) plus one greedy pass for the exact-match columns:

- `qa_acc` / `qa_em`, `trivia_acc` / `trivia_em`, `multihop_acc`: teacher-forced token accuracy
  (`teacher_forced_token_acc`, averaged over items) and greedy exact match (`greedy_token_exact_match`);
- `mc_acc` (macro over relations, as MMLU averages its subjects) and `sentiment_acc`: multiple choice,
  the option with the lowest mean token NLL wins (OpenCompass's PPL inferencer; `choice_accuracy`);
- `heldout_ppl`: token-pooled perplexity of held-out documents, every token after the first word
  (`target_perplexity` over the concatenated log-probs; lower is better).

Values are tagged with the protocol of their scoring rule and a timing: "pre_edit" for the unedited
model, "after_all_T" after the sequential edits. Nothing here branches on a method name.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from core.editors.base import chain_undos
from core.editors.registry import get_method, resolve_hparams
from core.eval.evaluate import AFTER_ALL_T, PRE_EDIT, EvalSettings, compute_pre_edit, evaluate_requests
from core.eval.protocols import run_edits, summarize
from core.eval.scoring import greedy_generate, score_answers
from core.metrics import greedy_token_exact_match, mean_metric, target_perplexity, teacher_forced_token_acc
from core.types import EditRequest, MetricValue
from core.world.tasks import GeneralTasks

log = logging.getLogger(__name__)

CHOICE_MIN_NLL = "choice_argmin_mean_nll"
"""1 iff the option with the lowest mean token NLL is the gold one (first index on ties), averaged over items."""
CHOICE_MIN_NLL_MACRO = "choice_argmin_mean_nll_macro"
"""`CHOICE_MIN_NLL` averaged within each group, then over groups (MMLU-style macro average)."""
COLUMNS: dict[
    str, tuple[str, str]
] = {  # metric -> (our column, the KnowEdit Table 5 benchmark it stands in for)
    "qa_acc": ("World QA acc", "TriviaQA (closed-book QA)"),
    "qa_em": ("World QA EM", "TriviaQA (closed-book QA)"),
    "mc_acc": ("World MC acc", "MMLU (4-way, macro over subjects); CommonsenseQA (multiple choice)"),
    "multihop_acc": ("Multi-hop acc", "AGIEval (reasoning)"),
    "trivia_acc": ("Trivia acc", "TriviaQA"),
    "trivia_em": ("Trivia EM", "TriviaQA"),
    "sentiment_acc": ("Sentiment acc", "PIQA (two-choice)"),
    "heldout_ppl": ("Held-out PPL", "XSum (language quality; ROUGE-1 there); lower is better here"),
    "edit/reliability": ("Edit Succ. (5 edits)", "not in Table 5: the edits' own reliability after all 5"),
    "edit/locality": ("Locality (5 edits)", "not in Table 5: the edits' own locality after all 5"),
}
SUITE_METRICS = ("qa_acc", "qa_em", "mc_acc", "multihop_acc", "trivia_acc", "trivia_em", "sentiment_acc",
                 "heldout_ppl")  # fmt: skip


def choice_accuracy(
    option_nll: Sequence[torch.Tensor],
    gold: Sequence[int],
    *,
    groups: Sequence[str] | None = None,
    name: str = "choice_acc",
    timing: str = "unspecified",
) -> MetricValue:
    """Share of items whose argmin of `option_nll[i]` (K_i,) is `gold[i]`; macro over `groups` when given."""
    if len(option_nll) != len(gold) or not gold or (groups is not None and len(groups) != len(gold)):
        raise ValueError("need one (options,) tensor, one gold index (and one group) per item, at least one")
    hits = []
    for nll, g in zip(option_nll, gold, strict=True):
        nll = torch.as_tensor(nll, dtype=torch.float64).reshape(-1)
        if not 0 <= g < nll.numel():
            raise ValueError(f"gold index {g} out of range for {nll.numel()} options")
        hits.append(float(int(nll.argmin()) == g))
    if groups is None:
        return MetricValue(name, sum(hits) / len(hits), CHOICE_MIN_NLL, timing)
    per: dict[str, list[float]] = {}
    for h, g in zip(hits, groups, strict=True):
        per.setdefault(g, []).append(h)
    value = sum(sum(v) / len(v) for v in per.values()) / len(per)
    return MetricValue(name, value, CHOICE_MIN_NLL_MACRO, timing)


def _spans(sizes: Sequence[int]) -> list[slice]:
    out, start = [], 0
    for n in sizes:
        out.append(slice(start, start + n))
        start += n
    return out


def general_suite(
    model: nn.Module, tok, tasks: GeneralTasks, *, timing: str = "unspecified", batch_size: int = 64
) -> dict[str, MetricValue]:
    """Every metric of `SUITE_METRICS` on `model` as it is now (see the module docstring)."""
    qa_like = {"qa": tasks.qa, "multihop": tasks.multihop, "trivia": tasks.trivia}
    pairs = [(x.prompt, x.answer) for items in qa_like.values() for x in items]
    for c in (*tasks.choice, *tasks.sentiment):
        pairs += [(c.prompt, o) for o in c.options]
    pairs += [tuple(d.text.split(" ", 1)) for d in tasks.documents]  # (first word, the rest)
    sizes = [len(v) for v in qa_like.values()]
    sizes += [sum(len(c.options) for c in tasks.choice), sum(len(c.options) for c in tasks.sentiment)]
    sizes.append(len(tasks.documents))
    if min(sizes) == 0:
        raise ValueError(f"every task needs items, got {tasks.counts()}")
    scores = score_answers(model, tok, [p for p, _ in pairs], [a for _, a in pairs], batch_size=batch_size)
    qa, multihop, trivia, choice, sentiment, docs = (scores[s] for s in _spans(sizes))
    out: dict[str, MetricValue] = {}
    for key, part in (("qa", qa), ("multihop", multihop), ("trivia", trivia)):
        accs = [teacher_forced_token_acc(s.argmax_ids, s.label_ids, timing=timing) for s in part]
        out[f"{key}_acc"] = mean_metric(accs, name=f"{key}_acc")
    for key, items, part in (("qa", tasks.qa, qa), ("trivia", tasks.trivia, trivia)):
        gens = greedy_generate(model, tok, [x.prompt for x in items],
                               max_new_tokens=[len(s.label_ids) for s in part], batch_size=batch_size)  # fmt: skip
        ems = [
            greedy_token_exact_match(g.token_ids, s.label_ids, timing=timing)
            for g, s in zip(gens, part, strict=True)
        ]
        out[f"{key}_em"] = mean_metric(ems, name=f"{key}_em")
    for key, items, part, macro in (
        ("mc", tasks.choice, choice, True),
        ("sentiment", tasks.sentiment, sentiment, False),
    ):
        nll = [
            torch.stack([-s.logprobs.mean() for s in part[sl]])
            for sl in _spans([len(c.options) for c in items])
        ]
        groups = [c.group for c in items] if macro else None
        out[f"{key}_acc"] = choice_accuracy(
            nll, [c.gold for c in items], groups=groups, name=f"{key}_acc", timing=timing
        )
    out["heldout_ppl"] = target_perplexity(
        torch.cat([s.logprobs for s in docs]), name="heldout_ppl", timing=timing
    )
    return {k: out[k] for k in SUITE_METRICS}


def general_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 5 layout of tidy `general_abilities` rows (with a "model" column): one row per model and
    method, one column per `COLUMNS` entry present; accuracies x100, perplexity as is."""
    wide = rows.pivot_table(index=["model", "method"], columns="metric", values="value", sort=False)
    cols = [c for c in COLUMNS if c in wide]
    scale = pd.Series({c: 1.0 if c == "heldout_ppl" else 100.0 for c in cols})
    return (wide[cols] * scale).rename(columns={c: COLUMNS[c][0] for c in cols}).reset_index()


def draw_requests(requests: Sequence[EditRequest], n: int, seed: int) -> list[EditRequest]:
    """`n` requests drawn at random by `seed`: the first n of one seeded permutation (so draws are nested)."""
    if not 0 < n <= len(requests):
        raise ValueError(f"cannot draw {n} of {len(requests)} requests")
    order = list(range(len(requests)))
    random.Random(f"draw/{seed}").shuffle(order)
    return [requests[i] for i in order[:n]]


def touched_names(requests: Sequence[EditRequest]) -> list[str]:
    """Subjects, new targets and ground truths of `requests`: the entities general tasks must avoid."""
    return sorted({x for r in requests for x in (r.subject, r.target_new, r.ground_truth) if x})


def method_hparams(methods: Sequence[str], template: str, model: str) -> tuple[dict[str, Any], dict[str, str]]:
    """`core.editors.registry.resolve_hparams`, lenient: Table 5 and Figure 4 list the methods they skip."""
    return resolve_hparams(methods, template, model)


def _elapsed(start: float, cpu: float) -> dict[str, float]:
    """Wall seconds since `start` and process CPU seconds since `cpu` (CPU time does not grow with machine load)."""
    return {
        "seconds": round(time.perf_counter() - start, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
    }


def _rows(method: str, values: Mapping[str, MetricValue], **extra: Any) -> list[dict[str, Any]]:
    return [{"method": method, "metric": k, "value": v.value, "protocol": v.protocol, "timing": v.timing, **extra}
            for k, v in values.items()]  # fmt: skip


def general_abilities(
    model: nn.Module,
    tok,
    tasks: GeneralTasks,
    requests: Sequence[EditRequest],
    methods: Mapping[str, Any],
    *,
    seed: int = 0,
    batch_size: int = 64,
) -> pd.DataFrame:
    """KnowEdit Table 5 on one model: the suite unedited, then per method after `requests` edited in sequence.

    Each method edits the requests one call after another (no restore in between), the suite and the
    edits' own metrics (`edit/reliability`, ... after all T) are measured, and every edit is undone.
    Returns a tidy frame: method, metric, value, protocol, timing, n_edits, seconds, cpu_seconds.
    Invariant: on return the model is bit-identical to its state at the call.
    """
    settings = EvalSettings(batch_size=batch_size)
    start, cpu = time.perf_counter(), time.process_time()
    values = general_suite(model, tok, tasks, timing=PRE_EDIT, batch_size=batch_size)
    rows = _rows("unedited", values, n_edits=0, **_elapsed(start, cpu))
    pre = compute_pre_edit(model, tok, requests, settings)
    for name, hp in methods.items():
        start, cpu, method, undos = time.perf_counter(), time.process_time(), get_method(name), []
        torch.manual_seed(seed)
        try:
            for r in requests:
                undos.append(method.edit(model, tok, [r], hp))
            values = general_suite(model, tok, tasks, timing=AFTER_ALL_T, batch_size=batch_size)
            post = evaluate_requests(model, tok, requests, pre=pre, timing=AFTER_ALL_T, settings=settings)
        finally:
            chain_undos(undos, description=f"{len(undos)} sequential {name} edits")()
        for k in ("reliability", "portability", "locality"):
            vs = [m for ms in post for m in ms if m.name == k]
            if vs:
                values[f"edit/{k}"] = mean_metric(vs)
        rows += _rows(name, values, n_edits=len(requests), **_elapsed(start, cpu))
        log.info(
            "%s: general suite after %d sequential edits in %.1f s", name, len(requests), rows[-1]["seconds"]
        )
    return pd.DataFrame(rows)


def capped_steps(steps: Sequence[int], available: int) -> dict[int, tuple[int, ...]]:
    """Actual T (requested T capped at `available`) -> the requested values it stands for, ascending."""
    out: dict[int, tuple[int, ...]] = {}
    for t in sorted(steps):
        if t < 1:
            raise ValueError(f"T must be >= 1, got {t}")
        out[min(t, available)] = (*out.get(min(t, available), ()), t)
    return out


def continual_curves(
    model: nn.Module,
    tok,
    data: Mapping[str, Sequence[EditRequest]],
    methods: Mapping[str, Any],
    steps: Sequence[int],
    *,
    seed: int = 0,
    batch_size: int = 64,
) -> pd.DataFrame:
    """KnowEdit Fig. 4 on one model: per method, dataset and T, T random edits in sequence, scored after all T.

    Each point is one `run_edits(protocol="sequential")` call on `draw_requests(data[ds], T, seed)`
    (nested draws). T is capped at the dataset's size; `requested` lists the T values a capped point
    stands for. Returns method, dataset, T, requested, n_file, edit_succ, portability, locality (x100),
    seconds (wall) and cpu_seconds (process CPU time: the machine-load-independent cost on one thread).
    """
    settings, rows = EvalSettings(batch_size=batch_size), []
    for name, hp in methods.items():
        for ds, requests in data.items():
            for t, requested in capped_steps(steps, len(requests)).items():
                start, cpu = time.perf_counter(), time.process_time()
                torch.manual_seed(seed)
                records = run_edits(model, tok, draw_requests(requests, t, seed), name, hp, protocol="sequential",
                                    settings=settings, progress=False)  # fmt: skip
                m = summarize(records, timing=AFTER_ALL_T)
                rows.append({"method": name, "dataset": ds, "T": t, "requested": ",".join(map(str, requested)),
                             "n_file": len(requests), "edit_succ": 100 * m["reliability"],
                             "portability": 100 * m.get("portability", float("nan")),
                             "locality": 100 * m.get("locality", float("nan")),
                             **_elapsed(start, cpu)})  # fmt: skip
                log.info("%s %s T=%d: %s", name, ds, t, rows[-1])
    return pd.DataFrame(rows)
