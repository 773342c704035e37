"""Reader for the MEND zsRE layout (`zsre_mend_*.json`; easyedit-notes §3.2) -> `list[EditRequest]`.

Record: `{subject, src, pred?, rephrase, alt, answers?, loc, loc_ans, cond?, portability?}`. Mapping:
prompt=`src`, target_new=`alt`, ground_truth=`answers[0]` (None when `answers` is absent or empty),
rephrases=(`rephrase`,), locality={"NQ": (Probe(loc, loc_ans),)} with `loc` verbatim (it starts with
"nq question: ", which is checked, stricter than EasyEdit's substring assert). A blank `loc_ans` drops
the probe, as KnowEdit's empty answers are dropped. The GPT-4 portability variant
(`zsre_mend_eval_portability_gpt4.json`, `portability: {"New Question", "New Answer"}`) gives
portability={"one_hop": ...}, `run_zsre_llama2.py`'s key. `extras["cond"]` is rebuilt as the reference's
`"{answers[0]} >> {alt} || {src}"` (the file's own `cond` is used only without `answers`), and
`extras["pred"]` keeps `pred`.

Empty `alt`: EasyEdit's `ZsreDataset` silently skips such records. Here they raise `DataError` unless
`skip_empty_alt=True`, which skips them with a log line; case ids keep the file index either way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from core.data.fields import Record, load_records
from core.types import EditRequest, Probe

log = logging.getLogger(__name__)

NQ_PREFIX = "nq question: "
LOCALITY_KEY = "NQ"


def read_zsre_mend(
    path: str | Path, *, skip_empty_alt: bool = False, require_subject_in_prompt: bool = False
) -> list[EditRequest]:
    """Read a MEND-layout zsRE file; see the module docstring for the mapping and the empty-`alt` policy."""
    out, skipped = [], []
    for rec in load_records(path):
        request = zsre_mend_request(rec, require_subject_in_prompt=require_subject_in_prompt)
        if request is not None:
            out.append(request)
        elif skip_empty_alt:
            skipped.append(rec.index)
        else:
            raise rec.error(
                "alt", "empty string (EasyEdit skips such records silently; pass skip_empty_alt=True)"
            )
    if skipped:
        log.warning("%s: skipped %d records with an empty 'alt': %s", path, len(skipped), skipped[:20])
    log.info("read %d requests from %s", len(out), path)
    return out


def zsre_mend_request(rec: Record, *, require_subject_in_prompt: bool = False) -> EditRequest | None:
    """One MEND-layout record -> request, or None when `alt` is blank (the caller decides skip or error)."""
    src = rec.text("src")
    subject = rec.text("subject", allow_empty=True)
    alt = rec.text("alt", allow_empty=True)
    rephrase = rec.text("rephrase")
    loc = rec.text("loc")
    if not loc.startswith(NQ_PREFIX):
        raise rec.error("loc", f"does not start with {NQ_PREFIX!r}: {loc[:60]!r}")
    loc_ans = rec.text("loc_ans", allow_empty=True)
    ground_truth, aliases = rec.answer("answers") if rec.has("answers") else (None, ())
    portability = {}
    if rec.has("portability"):
        port = rec.mapping("portability")
        question = rec.text("New Question", within=port, at="portability")
        answer, _ = rec.answer("New Answer", within=port, at="portability")
        if answer is not None:
            portability["one_hop"] = (Probe(question, answer),)
    extras: dict[str, Any] = {"aliases": {"ground_truth": aliases}}
    if rec.has("pred"):
        extras["pred"] = rec.text("pred", allow_empty=True)
    if ground_truth is not None:
        extras["cond"] = f"{ground_truth} >> {alt} || {src}"
    elif rec.has("cond"):
        extras["cond"] = rec.text("cond", allow_empty=True)
    if not alt.strip():
        return None
    if require_subject_in_prompt:
        rec.check_subject(subject, src, prompt_field="src")
    return EditRequest(
        case_id=rec.case_id,
        prompt=src,
        subject=subject,
        target_new=alt,
        ground_truth=ground_truth,
        rephrases=(rephrase,),
        locality={LOCALITY_KEY: (Probe(loc, loc_ans),)} if loc_ans.strip() else {},
        portability=portability,
        extras=extras,
    )
