"""Evaluation suites: which metrics a dataset's edits are scored with, chosen by the data layout.

A `Suite` bundles the three steps a protocol needs: `prepare` (turn the reader's requests into edit
requests; it may read companion files of the same data tree), `pre` (what must be captured before any edit) and `post` (metrics on the model as it is).
- "facts" (every fact/QA layout, WikiBio included): reliability, generalization, portability,
  locality, optional greedy EM and fluency (`core.eval.evaluate`);
- "convsent": KnowEdit Eqs. 12-13, sentiment edit success and KL drawdown (`core.eval.convsent`);
- "sanitation": "I don't know." success and retain-set generation match (`core.eval.sanitation`).
Protocols (`core.eval.protocols.run_edits`) take a suite and never branch on datasets or methods;
`suite_for_layout` is the one place that maps a reader layout to its suite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from core.data import read_requests
from core.data.trees import dataset_file
from core.eval.convsent import convsent_evaluate, convsent_pre
from core.eval.evaluate import EvalSettings, PreEditOutputs, compute_pre_edit, evaluate_requests
from core.eval.sanitation import prepare_sanitation, sanitation_evaluate, sanitation_pre
from core.types import EditRequest, MetricValue

PreFn = Callable[[nn.Module, object, Sequence[EditRequest], EvalSettings], PreEditOutputs]
PostFn = Callable[..., list[tuple[MetricValue, ...]]]  # (model, tok, requests, *, pre, timing, settings)


@dataclass(frozen=True)
class Suite:
    """How one kind of dataset is evaluated; `cacheable` says whether `pre` outputs fit the JSON cache."""

    name: str
    prepare: Callable[[Sequence[EditRequest], str | Path | None], list[EditRequest]]  # (requests, data root)
    pre: PreFn
    post: PostFn
    cacheable: bool = True


def _as_is(requests: Sequence[EditRequest], data_root: str | Path | None) -> list[EditRequest]:
    return list(requests)


def _prepare_sanitation(requests: Sequence[EditRequest], data_root: str | Path | None) -> list[EditRequest]:
    """Pair the test file with the K_F facts of `sanitation-train` in the same tree, when it is there."""
    train = None
    if data_root is not None:
        try:
            layout, path = dataset_file(data_root, "sanitation-train")
        except FileNotFoundError:
            path = None
        if path is not None:
            train = read_requests(layout, path)
    return prepare_sanitation(requests, train)


FACTS = Suite("facts", _as_is, compute_pre_edit, evaluate_requests)
CONVSENT = Suite("convsent", _as_is, convsent_pre, convsent_evaluate, cacheable=False)
SANITATION = Suite("sanitation", _prepare_sanitation, sanitation_pre, sanitation_evaluate)

SUITES: dict[str, Suite] = {s.name: s for s in (FACTS, CONVSENT, SANITATION)}
_LAYOUT_SUITES = {"knowedit-convsent": CONVSENT, "knowedit-sanitation": SANITATION}


def suite_for_layout(layout: str) -> Suite:
    """The suite of a reader layout (`core.data.READERS` key): ConvSent and Sanitation, else facts."""
    return _LAYOUT_SUITES.get(layout, FACTS)
