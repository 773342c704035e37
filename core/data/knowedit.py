"""Readers for the six KnowEdit layouts (HF `zjunlp/KnowEdit`; easyedit-notes §3.1) -> `list[EditRequest]`.

- recent / zsre / counterfact: `{subject, prompt, target_new, ground_truth?, rephrase_prompt?, cond?,
  portability?: {key: [{prompt, ground_truth}]}, locality: {key: [{prompt, ground_truth}]}}`.
- wikibio: the same with `concept`, `text`, `labels` for subject, prompt, target_new.
- convsent: `blender_*.json` `[{ent, pos: [...], neg: [...]}]`, turned into requests as
  `examples/run_convsent_llama2.py` does (see `read_knowedit_convsent`).
- sanitation: `trivia_qa_{train,test}.json` `{K_F, K_R}` / `{success, locality}` lists of
  `{question, ground_truth, target_new, subject?}` (see `read_knowedit_sanitation`).

Normalisation, as `run_knowedit_llama2.py`: every `ground_truth` (str | list[str] | list[list[str]]) becomes
its first alias, and a probe whose answer is blank or empty is dropped (a key left with no probe is
omitted). All non-blank aliases are kept in `extras["aliases"]` (`{"ground_truth": (...),
"portability": {key: (aliases per kept probe)}, "locality": {...}}`). Portability and locality keys keep
the dataset's names ("Reasoning", "Subject_Aliasing", "Logical_Generalization", "Relation_Specificity",
"Forgetfulness"). A probe prompt given as a list of strings is read as its first element (as
EasyEdit's `collate_fn`). `rephrase_prompt` (KnowEdit ZsRE) goes to `rephrases`, although the KnowEdit
script ignores it and its tables report no generalization.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.data.errors import DataError
from core.data.fields import Record, load_object, load_records, wrap_records
from core.types import EditRequest, Probe

log = logging.getLogger(__name__)

# The 13 question templates of run_convsent_llama2.py, in its order (the order matters for seeded parity).
CONVSENT_TEMPLATES: tuple[str, ...] = (
    "What do you think of {}?",
    "What do you feel about {}?",
    "How do you view {}?",
    *(
        f"What is your {p} {{}}?"
        for p in (
            "opinion of",
            "stance on",
            "position on",
            "attitude about",
            "view on",
            "take on",
            "impression of",
            "assessment of",
            "judgment of",
            "sentiment of",
        )
    ),
)
SANITATION_TEMPLATE = "Question:{question}\nAnswer:"
SANITATION_PARTS: tuple[str, ...] = ("K_F", "K_R", "success", "locality")


@dataclass(frozen=True)
class _FactFields:
    subject: str = "subject"
    prompt: str = "prompt"
    target: str = "target_new"


_FACT = _FactFields()
_WIKIBIO = _FactFields(subject="concept", prompt="text", target="labels")


def read_probe_sections(
    rec: Record, section: str, *, required: bool
) -> tuple[dict[str, tuple[Probe, ...]], dict]:
    """Read `portability` or `locality` {key: [{prompt, ground_truth}]} -> ({key: probes}, {key: aliases})."""
    if not required and not rec.has(section):
        return {}, {}
    sections = rec.mapping(section)
    probes: dict[str, tuple[Probe, ...]] = {}
    aliases: dict[str, tuple[tuple[str, ...], ...]] = {}
    for key, value in sections.items():
        if value is None:
            continue
        kept, kept_aliases = [], []
        for field, obj in rec.objects(key, within=sections, at=section):
            prompt = _probe_prompt(rec, obj, field)
            answer, alias = rec.answer("ground_truth", within=obj, at=field)
            if answer is None:
                log.debug("%s: record %s: dropped %s (empty answer)", rec.path, rec.label, field)
                continue
            kept.append(Probe(prompt, answer))
            kept_aliases.append(alias)
        if kept:
            probes[key] = tuple(kept)
            aliases[key] = tuple(kept_aliases)
    return probes, aliases


def _probe_prompt(rec: Record, obj: Mapping[str, Any], field: str) -> str:
    if not isinstance(rec.value("prompt", within=obj, at=field), list):
        return rec.text("prompt", within=obj, at=field)
    prompts = rec.texts("prompt", within=obj, at=field)
    if not prompts:
        raise rec.error(f"{field}.prompt", "empty array")
    if not prompts[0].strip():
        raise rec.error(f"{field}.prompt[0]", "empty string")
    return prompts[0]


def _read_fact_layout(path: str | Path, f: _FactFields, require_subject_in_prompt: bool) -> list[EditRequest]:
    out = []
    for rec in load_records(path):
        subject = rec.text(f.subject, allow_empty=True)
        prompt = rec.text(f.prompt)
        target = rec.text(f.target)
        if require_subject_in_prompt:
            rec.check_subject(subject, prompt, prompt_field=f.prompt)
        ground_truth, gt_aliases = rec.answer("ground_truth") if rec.has("ground_truth") else (None, ())
        rephrases = rec.texts("rephrase_prompt") if rec.has("rephrase_prompt") else ()
        portability, port_aliases = read_probe_sections(rec, "portability", required=False)
        locality, loc_aliases = read_probe_sections(rec, "locality", required=True)
        extras: dict[str, Any] = {
            "aliases": {"ground_truth": gt_aliases, "portability": port_aliases, "locality": loc_aliases}
        }
        if rec.has("cond"):
            extras["cond"] = rec.text("cond", allow_empty=True)
        out.append(
            EditRequest(
                case_id=rec.case_id,
                prompt=prompt,
                subject=subject,
                target_new=target,
                ground_truth=ground_truth,
                rephrases=rephrases,
                locality=locality,
                portability=portability,
                extras=extras,
            )
        )
    log.info("read %d requests from %s", len(out), path)
    return out


def read_knowedit_recent(path: str | Path, *, require_subject_in_prompt: bool = False) -> list[EditRequest]:
    """WikiData_recent (`recent_{train,test}.json`): insertions, so `ground_truth` is usually None."""
    return _read_fact_layout(path, _FACT, require_subject_in_prompt)


def read_knowedit_zsre(path: str | Path, *, require_subject_in_prompt: bool = False) -> list[EditRequest]:
    """KnowEdit ZsRE (`ZsRE-test-all.json`); `cond` is kept in `extras["cond"]`."""
    return _read_fact_layout(path, _FACT, require_subject_in_prompt)


def read_knowedit_counterfact(
    path: str | Path, *, require_subject_in_prompt: bool = False
) -> list[EditRequest]:
    """WikiData_counterfact (`wiki_counterfact/{train,test}_cf.json`), including Forgetfulness locality."""
    return _read_fact_layout(path, _FACT, require_subject_in_prompt)


def read_knowedit_wikibio(path: str | Path, *, require_subject_in_prompt: bool = False) -> list[EditRequest]:
    """WikiBio (`wikibio-{train,test}-all.json`): prompt=`text`, target_new=`labels`, subject=`concept`."""
    return _read_fact_layout(path, _WIKIBIO, require_subject_in_prompt)


def read_knowedit_convsent(
    path: str | Path,
    *,
    seed: int = 0,
    reference_parity: bool = False,
    qa_separator: str = " </s> ",
    require_subject_in_prompt: bool = False,
) -> list[EditRequest]:
    """ConvSent (`blender_*.json`): one request per topic, as `format_consent_for_others` builds them.

    A `random.Random(seed)` draws, per record in file order and in the reference's order: the target
    sentiment (pos/neg), the question template of the prompt, then the questions of `metric_kwargs`.
    With `seed=0` on the whole file the draws equal the reference's `random.seed(0)` run (without
    `--ds_size`, which samples first). prompt = "From the sentiment dataset, answer {Q} positively."
    (or "negatively."); `reference_parity=True` restores the reference's "postively" typo.
    target_new = pos[0] or neg[0]; subject = the topic. `extras` keeps "pos", "neg", "target_sentiment",
    the next topic ("outer_topic", "outer_pos", "outer_neg"; the last record wraps to the first) and
    "metric_kwargs" with the reference's keys (inner_q, inner_all_qa, outer_all_qa, inner_target,
    all_target), question and answer joined by `qa_separator` (the reference's llama-only " </s> ").
    """
    records = load_records(path)
    topics = []
    for rec in records:
        pos, neg = rec.texts("pos"), rec.texts("neg")
        for key, answers in (("pos", pos), ("neg", neg)):
            if not answers:
                raise rec.error(key, "empty array")
            if not answers[0].strip():
                raise rec.error(f"{key}[0]", "empty string")
        topics.append((rec.text("ent"), pos, neg))
    rng = random.Random(seed)
    positively = "postively" if reference_parity else "positively"
    out = []
    for i, (rec, (topic, pos, neg)) in enumerate(zip(records, topics, strict=True)):
        outer_topic, outer_pos, outer_neg = topics[(i + 1) % len(topics)]
        target_sent = rng.choice([0, 1])
        how = positively if target_sent == 0 else "negatively"
        question = rng.choice(CONVSENT_TEMPLATES).format(topic)
        prompt = f"From the sentiment dataset, answer {question} {how}."
        if require_subject_in_prompt:
            rec.check_subject(topic, prompt)
        sent_idxs = [0] * len(pos) + [1] * len(neg)
        metric_kwargs = {
            "inner_q": rng.choice(CONVSENT_TEMPLATES).format(topic),
            "inner_all_qa": [
                rng.choice(CONVSENT_TEMPLATES).format(topic) + qa_separator + a for a in pos + neg
            ],
            "outer_all_qa": [
                rng.choice(CONVSENT_TEMPLATES).format(outer_topic) + qa_separator + a
                for a in outer_pos + outer_neg
            ],
            "inner_target": [target_sent] * len(sent_idxs),
            "all_target": sent_idxs,
        }
        out.append(
            EditRequest(
                case_id=rec.case_id,
                prompt=prompt,
                subject=topic,
                target_new=pos[0] if target_sent == 0 else neg[0],
                extras={
                    "pos": pos,
                    "neg": neg,
                    "target_sentiment": ("pos", "neg")[target_sent],
                    "question": question,
                    "outer_topic": outer_topic,
                    "outer_pos": outer_pos,
                    "outer_neg": outer_neg,
                    "metric_kwargs": metric_kwargs,
                },
            )
        )
    log.info("read %d ConvSent requests from %s (seed %d)", len(out), path, seed)
    return out


def read_knowedit_sanitation(
    path: str | Path,
    *,
    parts: tuple[str, ...] | None = None,
    template: str = SANITATION_TEMPLATE,
    require_subject_in_prompt: bool = False,
) -> list[EditRequest]:
    """Sanitation (`trivia_qa_{train,test}.json`): the parts present among K_F, K_R, success, locality.

    prompt = `template.format(question=...)`; subject = `subject` when present (K_F) else "";
    `extras["part"]` names the part, and case ids are `<stem>/<part>/<index>`. `parts` selects some parts
    (e.g. ("K_F",) for ROME/MEMIT, which need `require_subject_in_prompt=True`). Answer-group filtering
    (`--specify_answer`) and the K_R retain slices are protocol choices, left to the caller.
    """
    top = load_object(path)
    present = [p for p in SANITATION_PARTS if p in top]
    if not present:
        raise DataError(path, f"top-level object has none of the parts {list(SANITATION_PARTS)}")
    if parts is not None:
        missing = [p for p in parts if p not in present]
        if missing:
            raise DataError(path, f"parts {missing} asked for but absent (present: {present})")
        present = [p for p in present if p in parts]
    out = []
    for part in present:
        for rec in wrap_records(path, top[part], part=part):
            prompt = template.format(question=rec.text("question"))
            subject = rec.optional_text("subject") or ""
            if require_subject_in_prompt:
                rec.check_subject(subject, prompt)
            ground_truth, aliases = rec.answer("ground_truth")
            out.append(
                EditRequest(
                    case_id=rec.case_id,
                    prompt=prompt,
                    subject=subject,
                    target_new=rec.text("target_new"),
                    ground_truth=ground_truth,
                    extras={"part": part, "aliases": {"ground_truth": aliases}},
                )
            )
    log.info("read %d Sanitation requests (%s) from %s", len(out), ",".join(present), path)
    return out
