"""Readers for the WISE bundle (ZsRE, Hallucination, Temporal; easyedit-notes §3.3) -> `list[EditRequest]`.

- ZsRE (`ZsRE/zsre_mend_edit.json`): the MEND layout, read by `core.data.zsre.read_zsre_mend`.
- Hallucination (`hallucination/hallucination-edit.json`): `{prompt, subject, target_new, locality_prompt,
  locality_ground_truth}`; no rephrase.
- Temporal (`temporal/temporal-edit.json`): the same plus `ood_rephrase`, kept both as the only rephrase
  (`run_wise_editing.py` passes it as `rephrase_prompts`) and as `extras["ood_rephrase"]` (the `ood_ppl`
  metric's input).

Locality is {"neighborhood": (Probe(locality_prompt, locality_ground_truth),)}, the key used by
`run_wise_editing.py` (the MEND layout keeps its "NQ" key). A blank `locality_ground_truth` drops the
probe, as empty answers are dropped elsewhere; the real hallucination edit set has 7 such records
(indices 86, 90, 171, 172, 238, 314, 432), which load with no locality. `load_wise_loc_prompts` builds
the irrelevant inputs x_i of WISE's activation-margin loss from a train file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.data.fields import Record, load_records
from core.data.zsre import read_zsre_mend
from core.types import EditRequest, Probe

log = logging.getLogger(__name__)

LOCALITY_KEY = "neighborhood"


def read_wise_zsre(
    path: str | Path, *, skip_empty_alt: bool = False, require_subject_in_prompt: bool = False
) -> list[EditRequest]:
    """WISE's ZsRE edit set (MEND layout): the same as `read_zsre_mend`."""
    return read_zsre_mend(
        path, skip_empty_alt=skip_empty_alt, require_subject_in_prompt=require_subject_in_prompt
    )


def read_wise_hallucination(
    path: str | Path, *, require_subject_in_prompt: bool = False
) -> list[EditRequest]:
    """WISE Hallucination edit or train set."""
    return _read(path, ood=False, require_subject_in_prompt=require_subject_in_prompt)


def read_wise_temporal(path: str | Path, *, require_subject_in_prompt: bool = False) -> list[EditRequest]:
    """WISE Temporal edit or train set (`ood_rephrase` -> rephrases and `extras["ood_rephrase"]`)."""
    return _read(path, ood=True, require_subject_in_prompt=require_subject_in_prompt)


def _read(path: str | Path, *, ood: bool, require_subject_in_prompt: bool) -> list[EditRequest]:
    out, no_locality = [], []
    for rec in load_records(path):
        request = _request(rec, ood=ood, require_subject_in_prompt=require_subject_in_prompt)
        if not request.locality:
            no_locality.append(rec.index)
        out.append(request)
    if no_locality:
        log.info(
            "%s: %d records have a blank locality_ground_truth (no locality probe): %s",
            path,
            len(no_locality),
            no_locality[:20],
        )
    log.info("read %d requests from %s", len(out), path)
    return out


def _request(rec: Record, *, ood: bool, require_subject_in_prompt: bool) -> EditRequest:
    prompt = rec.text("prompt")
    subject = rec.text("subject", allow_empty=True)
    if require_subject_in_prompt:
        rec.check_subject(subject, prompt)
    loc_prompt = rec.text("locality_prompt")
    loc_answer = rec.text("locality_ground_truth", allow_empty=True)
    ood_rephrase = rec.text("ood_rephrase") if ood else None
    return EditRequest(
        case_id=rec.case_id,
        prompt=prompt,
        subject=subject,
        target_new=rec.text("target_new"),
        rephrases=(ood_rephrase,) if ood_rephrase is not None else (),
        locality={LOCALITY_KEY: (Probe(loc_prompt, loc_answer),)} if loc_answer.strip() else {},
        extras={"ood_rephrase": ood_rephrase} if ood_rephrase is not None else {},
    )


def load_wise_loc_prompts(train_path: str | Path, *, limit: int | None = None) -> list[str]:
    """The activation-margin loss's irrelevant inputs: `loc + " " + loc_ans` for each train record.

    Handles both train layouts: MEND (`zsre_mend_train.json`: `loc`, `loc_ans`) and Hallucination /
    Temporal (`locality_prompt`, `locality_ground_truth`), chosen by the first record. `limit` keeps the
    first records only, as `run_wise_editing.py` slices the train file to `--ds_size`. Strings are built
    verbatim, as the reference does (a blank answer leaves a trailing space).
    """
    records = load_records(train_path)
    if limit is not None:
        records = records[:limit]
    if not records:
        return []
    keys = ("loc", "loc_ans") if "loc" in records[0].data else ("locality_prompt", "locality_ground_truth")
    return [rec.text(keys[0]) + " " + rec.text(keys[1], allow_empty=True) for rec in records]
