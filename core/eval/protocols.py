"""Edit-and-evaluate protocols: single edits with restore, batch edits, and sequential editing.

- "single" (KnowEdit Table 4, InstructEdit): edit one request, evaluate it, undo; the model is back
  to its original weights before the next request (timing "single_edit_restore").
- "batch" (MEMIT-style, WISE's MEMIT-MASS): edit `batch_size` requests in one call, evaluate them,
  undo (timing "batch_edit_restore").
- "sequential" (WISE §3 / Eq. 9, KnowEdit Fig. 4): apply T edits one call after another (calls of
  `batch_size` requests, 1 in WISE) without restoring, then evaluate ALL T requests on the final model
  (timing "after_all_T", the protocol of the WISE paper and of EasyEdit before commit 3c21b20,
  easyedit-notes §1.3). With `eval_after_each=True` each request is also evaluated right after its
  own edit call (timing "after_own_edit", EasyEdit HEAD's behaviour); these come back as extra
  records. All edits are undone at the end, last first.
Pre-edit outputs (locality argmax ids, pre metrics) are captured once, before any edit, optionally
through the on-disk cache. Protocols look methods up in the registry and never branch on their names.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from torch import nn
from tqdm.auto import tqdm

from core.editors.base import chain_undos
from core.editors.registry import get_method
from core.eval.cache import load_or_compute_pre_edit
from core.eval.evaluate import (
    AFTER_ALL_T,
    AFTER_OWN_EDIT,
    BATCH_EDIT_RESTORE,
    SINGLE_EDIT_RESTORE,
    EvalSettings,
    PreEditOutputs,
)
from core.eval.suites import FACTS, Suite
from core.metrics import ProtocolMismatchError, mean_metric
from core.types import EditRecord, EditRequest, MetricValue

log = logging.getLogger(__name__)

Protocol = Literal["single", "batch", "sequential"]


def _record(
    r: EditRequest, method: str, pre: PreEditOutputs, post: tuple[MetricValue, ...], **extras: Any
) -> EditRecord:
    return EditRecord(
        case_id=r.case_id, method=method, pre=pre.metrics.get(r.case_id, ()), post=post, extras=extras
    )


def _chunks(requests: Sequence[EditRequest], size: int) -> list[Sequence[EditRequest]]:
    return [requests[i : i + size] for i in range(0, len(requests), size)]


def run_edits(
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    method_name: str,
    hparams: Any,
    *,
    protocol: Protocol,
    batch_size: int = 1,
    eval_after_each: bool = False,
    cache_dir: str | Path | None = None,
    settings: EvalSettings | None = None,
    suite: Suite = FACTS,
    progress: bool = True,
) -> list[EditRecord]:
    """Edit `requests` with `method_name` under `protocol` and return one `EditRecord` per request.

    `settings` (default `EvalSettings()`) chooses the optional metrics and the scoring batch size;
    `suite` (`core.eval.suites`) says what is captured before editing and which metrics are computed
    (`requests` must already be the suite's prepared requests).
    `batch_size` is the number of requests per `edit` call (the protocol's edit batch, independent of
    any batch size inside the method's hparams). Records keep the request order; with
    `eval_after_each` the T "after_own_edit" records follow the T "after_all_T" records. Each record's
    extras hold protocol, timing, edit_call (index of the edit call) and n_edits.
    Invariant: on return (or on an exception) every edit has been undone, so the model is bit-identical
    to its state at the call.
    """
    settings = settings if settings is not None else EvalSettings()
    method = get_method(method_name)
    if not isinstance(hparams, method.hparams):
        raise TypeError(f"{method_name} needs {method.hparams.__name__}, got {type(hparams).__name__}")
    if protocol not in ("single", "batch", "sequential"):
        raise ValueError(f"protocol must be 'single', 'batch' or 'sequential', got {protocol!r}")
    if protocol == "single" and batch_size != 1:
        raise ValueError("the single protocol edits one request at a time (batch_size=1)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if eval_after_each and protocol != "sequential":
        raise ValueError("eval_after_each applies to the sequential protocol only")
    ids = [r.case_id for r in requests]
    if len(set(ids)) != len(ids):
        raise ValueError("case ids must be unique within one run")
    if not requests:
        return []
    if not suite.cacheable:
        cache_dir = None
    pre = load_or_compute_pre_edit(
        model, tok, requests, settings, cache_dir, suite=suite.name, compute=suite.pre
    )
    chunks = _chunks(requests, batch_size)
    bar = tqdm(chunks, desc=f"{method_name} {protocol}", unit="edit", disable=not progress)
    common = {"protocol": protocol, "n_edits": len(requests)}
    if protocol != "sequential":
        timing = SINGLE_EDIT_RESTORE if protocol == "single" else BATCH_EDIT_RESTORE
        records = []
        for k, chunk in enumerate(bar):
            undo = method.edit(model, tok, chunk, hparams)
            try:
                post = suite.post(model, tok, chunk, pre=pre, timing=timing, settings=settings)
            finally:
                undo()
            records += [
                _record(r, method_name, pre, p, **common, timing=timing, edit_call=k)
                for r, p in zip(chunk, post, strict=True)
            ]
        return records
    undos, own, call_of = [], [], {}
    try:
        for k, chunk in enumerate(bar):
            undos.append(method.edit(model, tok, chunk, hparams))
            call_of.update({r.case_id: k for r in chunk})
            if eval_after_each:
                post = suite.post(model, tok, chunk, pre=pre, timing=AFTER_OWN_EDIT, settings=settings)
                own += [
                    _record(r, method_name, pre, p, **common, timing=AFTER_OWN_EDIT, edit_call=k)
                    for r, p in zip(chunk, post, strict=True)
                ]
        log.info("evaluating %d requests after all %d edit calls", len(requests), len(chunks))
        final = suite.post(model, tok, requests, pre=pre, timing=AFTER_ALL_T, settings=settings)
    finally:
        chain_undos(undos, description=f"{len(undos)} sequential {method_name} edit call(s)")()
    return [
        _record(r, method_name, pre, p, **common, timing=AFTER_ALL_T, edit_call=call_of[r.case_id])
        for r, p in zip(requests, final, strict=True)
    ] + own


def summarize(
    records: Sequence[EditRecord], *, timing: str | None = None, stage: str = "post"
) -> dict[str, float]:
    """Mean of each metric over the records that have it, for one method, one timing and one protocol.

    `stage` is "post" or "pre". Raises `ProtocolMismatchError` when records mix methods, when values of
    one metric mix protocol tags, or when several timings are present and `timing` does not pick one.
    """
    if stage not in ("post", "pre"):
        raise ValueError(f"stage must be 'post' or 'pre', got {stage!r}")
    if not records:
        raise ValueError("no records to summarize")
    methods = {r.method for r in records}
    if len(methods) > 1:
        raise ProtocolMismatchError(f"refusing to summarize several methods together: {sorted(methods)}")
    values: dict[str, list[MetricValue]] = defaultdict(list)
    for r in records:
        for m in r.post if stage == "post" else r.pre:
            if timing is None or m.timing == timing:
                values[m.name].append(m)
    timings = {m.timing for vs in values.values() for m in vs}
    if len(timings) > 1:
        raise ProtocolMismatchError(f"records hold several timings {sorted(timings)}; pass timing=")
    return {name: mean_metric(vs).value for name, vs in sorted(values.items())}
