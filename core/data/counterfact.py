"""Readers for the two CounterFact layouts -> `list[EditRequest]`: ROME's original, EasyEdit's repackaging.

ROME (`counterfact.json`, `multi_counterfact.json`): `{case_id, pararel_idx, requested_rewrite: {prompt
(with "{}"), relation_id, target_new: {str, id}, target_true: {str, id}, subject}, paraphrase_prompts,
neighborhood_prompts, attribute_prompts, generation_prompts}`. prompt = the template with "{}" replaced by
the subject (it must hold "{}" exactly once, as ROME's `get_words_idxs_in_templates` asserts);
target_new / ground_truth = the two `str`s; rephrases = paraphrase_prompts; locality =
{"Neighborhood": probes answered by target_true}. `extras` keeps the template ("prompt_template"),
"relation_id", "pararel_idx", the file's "source_case_id", the target ids, and the "attribute_prompts"
and "generation_prompts" (empty when absent) that ROME's essence and fluency metrics use.

EasyEdit (`counterfact-{train,val,edit}.json`, easyedit-notes §3.2), already in request form:
`{subject, prompt, target_new, ground_truth, rephrase_prompt, locality_prompt, locality_ground_truth}`;
locality uses the same "Neighborhood" key. Answers may be strings or alias lists (first alias; a blank
locality answer drops the probe).
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.data.fields import Record, load_records
from core.types import EditRequest, Probe

log = logging.getLogger(__name__)

LOCALITY_KEY = "Neighborhood"


def read_counterfact_rome(path: str | Path, *, require_subject_in_prompt: bool = False) -> list[EditRequest]:
    """Read ROME's CounterFact layout; see the module docstring."""
    out = [_rome_request(rec, require_subject_in_prompt) for rec in load_records(path)]
    log.info("read %d requests from %s", len(out), path)
    return out


def _rome_request(rec: Record, require_subject_in_prompt: bool) -> EditRequest:
    at = "requested_rewrite"
    rw = rec.mapping(at)
    template = rec.text("prompt", within=rw, at=at)
    if template.count("{}") != 1:
        raise rec.error(f"{at}.prompt", f"must contain '{{}}' exactly once: {template!r}")
    subject = rec.text("subject", within=rw, at=at)
    prompt = template.replace("{}", subject)
    if require_subject_in_prompt:
        rec.check_subject(subject, prompt)
    new = rec.mapping("target_new", within=rw, at=at)
    true = rec.mapping("target_true", within=rw, at=at)
    target_new = rec.text("str", within=new, at=f"{at}.target_new")
    target_true = rec.text("str", within=true, at=f"{at}.target_true")
    neighborhood = rec.texts("neighborhood_prompts")
    extras = {
        "prompt_template": template,
        "relation_id": rec.value("relation_id", within=rw, at=at, default=None),
        "pararel_idx": rec.value("pararel_idx", default=None),
        "source_case_id": rec.value("case_id", default=None),
        "target_new_id": new.get("id"),
        "target_true_id": true.get("id"),
        "attribute_prompts": rec.texts("attribute_prompts") if rec.has("attribute_prompts") else (),
        "generation_prompts": rec.texts("generation_prompts") if rec.has("generation_prompts") else (),
    }
    return EditRequest(
        case_id=rec.case_id,
        prompt=prompt,
        subject=subject,
        target_new=target_new,
        ground_truth=target_true,
        rephrases=rec.texts("paraphrase_prompts"),
        locality={LOCALITY_KEY: tuple(Probe(p, target_true) for p in neighborhood)} if neighborhood else {},
        extras=extras,
    )


def read_counterfact_easyedit(
    path: str | Path, *, require_subject_in_prompt: bool = False
) -> list[EditRequest]:
    """Read EasyEdit's `counterfact-{train,val,edit}.json` request-form layout."""
    out = []
    for rec in load_records(path):
        prompt = rec.text("prompt")
        subject = rec.text("subject", allow_empty=True)
        if require_subject_in_prompt:
            rec.check_subject(subject, prompt)
        ground_truth, gt_aliases = rec.answer("ground_truth")
        loc_prompt = rec.text("locality_prompt")
        loc_answer, loc_aliases = rec.answer("locality_ground_truth")
        loc_alias_map = {LOCALITY_KEY: (loc_aliases,)} if loc_answer is not None else {}
        out.append(
            EditRequest(
                case_id=rec.case_id,
                prompt=prompt,
                subject=subject,
                target_new=rec.text("target_new"),
                ground_truth=ground_truth,
                rephrases=rec.texts("rephrase_prompt"),
                locality={LOCALITY_KEY: (Probe(loc_prompt, loc_answer),)} if loc_answer is not None else {},
                extras={"aliases": {"ground_truth": gt_aliases, "locality": loc_alias_map}},
            )
        )
    log.info("read %d requests from %s", len(out), path)
    return out
