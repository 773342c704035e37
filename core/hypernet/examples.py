"""MEND meta-training triples (MEND §3.2: z_edit, x_equiv, x_loc) built from edit requests.

`MetaExample` is what the trainer consumes: the edit (prompt -> target), an equivalence prompt asked for
the same target, and one locality pair (prompt, answer) whose output distribution must not move.
`meta_example` takes a request's first rephrase and first locality probe (for the MEND ZsRE layout: the
NQ question, as MEND and EasyEdit train). `as_examples(..., loc_source="same_subject")` instead takes the
locality pair from ANOTHER request about the same subject (its prompt and ground truth) when the set has
one, keeping the request's own probe otherwise: an option of ours, not MEND's, for benchmarks whose
locality probes ask other relations of the edited subject (KnowEdit's Relation_Specificity), which NQ
questions never exercise. InstructEdit builds its instruction-prefixed triples itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from core.types import EditRequest, Probe

LocSource = Literal["dataset", "same_subject"]
SAME_SUBJECT = "Same_Subject"  # locality key of the probes added by `with_same_subject_locality`


@dataclass(frozen=True, kw_only=True)
class MetaExample:
    """One meta-training triple: edit (prompt -> target), equivalence prompt (same target), locality pair."""

    case_id: str
    prompt: str
    target: str
    equiv_prompt: str
    loc_prompt: str
    loc_answer: str


def meta_example(r: EditRequest) -> MetaExample:
    """The triple of a request: its first rephrase (else the prompt) and its first locality probe."""
    keys = ([SAME_SUBJECT] if SAME_SUBJECT in r.locality else []) + sorted(set(r.locality) - {SAME_SUBJECT})
    probes = [p for key in keys for p in r.locality[key]]
    if not probes:
        raise ValueError(f"request {r.case_id}: no locality probe to build a MEND training triple from")
    return MetaExample(
        case_id=r.case_id, prompt=r.prompt, target=r.target_new,
        equiv_prompt=r.rephrases[0] if r.rephrases else r.prompt,
        loc_prompt=probes[0].prompt, loc_answer=probes[0].answer,
    )  # fmt: skip


def with_same_subject_locality(requests: Sequence[EditRequest]) -> list[EditRequest]:
    """Requests with a `Same_Subject` locality probe put first: the next request (cyclically, in order)
    about the same subject with another prompt and a ground truth, as (its prompt, its ground truth)."""
    by_subject: dict[str, list[int]] = {}
    for i, r in enumerate(requests):
        if r.subject.strip():
            by_subject.setdefault(r.subject, []).append(i)
    out = []
    for i, r in enumerate(requests):
        group = by_subject.get(r.subject, [])
        k = group.index(i) if group else 0
        partners = [requests[j] for j in group[k + 1 :] + group[:k]]
        partner = next((q for q in partners if q.prompt != r.prompt and q.ground_truth), None)
        if partner is None:
            out.append(r)
        else:
            probe = (Probe(partner.prompt, partner.ground_truth),)
            out.append(replace(r, locality={SAME_SUBJECT: probe, **r.locality}))
    return out


def as_examples(
    items: Sequence[MetaExample | EditRequest], loc_source: LocSource = "dataset"
) -> list[MetaExample]:
    """Triples from a mix of `MetaExample`s and `EditRequest`s (see the module docstring for `loc_source`)."""
    if loc_source not in ("dataset", "same_subject"):
        raise ValueError(f"loc_source must be 'dataset' or 'same_subject', got {loc_source!r}")
    requests = [x for x in items if isinstance(x, EditRequest)]
    if loc_source == "same_subject":
        requests = with_same_subject_locality(requests)
    converted = iter(requests)
    return [x if isinstance(x, MetaExample) else meta_example(next(converted)) for x in items]
