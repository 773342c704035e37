"""KnowEdit fact datasets in the exact HF `zjunlp/KnowEdit` layouts (easyedit-notes section 3.1).

* wiki_recent/recent_{train,test}.json: insertions of recent person facts (never in the corpus):
  {"subject", "prompt", "target_new", "portability": {"Logical_Generalization"?, "Reasoning"?,
  "Subject_Aliasing"?}, "locality": {"Relation_Specificity"}}; every ground truth is a list of alias lists.
* ZsRE/ZsRE-test-all.json: {"subject", "target_new", "prompt", "ground_truth": [str], "rephrase_prompt",
  "cond", "locality": {"Relation_Specificity": [{prompt, ground_truth: [str]}]},
  "portability": {"Reasoning": [{prompt, ground_truth: str}]}} (the MEND eval split, question form).
* wiki_counterfact/{train,test}_cf.json: {"subject", "prompt", "target_new", "ground_truth": str,
  "portability": {"Subject_Aliasing"?: gt str, "Reasoning"?: gt [[...]], "Logical_Generalization"?: gt [[...]]},
  "locality": {"Relation_Specificity"?: gt str, "Forgetfulness": gt str}}.
Portability/locality keys without probes are left out, as in the real files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.world.emit_common import shuffled, take_splits, write
from core.world.emit_mend import zsre_partition
from core.world.portability import (
    cloze,
    forgetfulness,
    logical,
    names_with_alias,
    reasoning,
    relation_specificity,
    subject_aliasing,
)
from core.world.schema import Fact, World

RECENT_RELATIONS = ("P20", "P108", "P166", "P26")


def _drop_empty(d: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {k: v for k, v in d.items() if v}


def recent_record(world: World, f: Fact) -> dict[str, Any]:
    """One WikiData_recent insertion record."""
    s = world.name(f.subject)
    rel = world.relation(f.rid)
    alias = subject_aliasing(world, f)
    port = {
        "Logical_Generalization": [{"prompt": p, "ground_truth": [[a] for a in answers]}
                                   for p, answers in logical(world, f, f.obj)],
        "Reasoning": [{"prompt": p, "ground_truth": [names_with_alias(world, o)]}
                      for p, _, o in reasoning(world, f, f.obj, limit=2)],
        "Subject_Aliasing": [] if alias is None else [{"prompt": alias,
                                                      "ground_truth": [names_with_alias(world, f.obj)]}],
    }
    loc = [{"prompt": cloze(r, s), "ground_truth": [names_with_alias(world, o)]}
           for r, o in relation_specificity(world, f)]
    return {"subject": s, "prompt": cloze(rel, s), "target_new": world.name(f.obj),
            "portability": _drop_empty(port), "locality": _drop_empty({"Relation_Specificity": loc})}


def recent_facts_for_editing(world: World) -> list[Fact]:
    """Recent person facts, one direction per new marriage."""
    return [f for f in world.recent_facts if f.rid in RECENT_RELATIONS and not (f.rid == "P26" and
            int(f.subject[1:]) > int(f.obj[1:]))]


def zsre_test_record(world: World, f: Fact) -> dict[str, Any]:
    """One KnowEdit ZsRE record (question form, counterfactual target)."""
    rel = world.relation(f.rid)
    s, true, new = world.name(f.subject), world.name(f.obj), world.name(f.counterfactual)
    prompt = rel.question.replace("{s}", s)
    loc = []
    for r, o in relation_specificity(world, f, limit=1):
        loc += [{"prompt": cloze(r, s), "ground_truth": [world.name(o)]},
                {"prompt": f"{s} {r.label}", "ground_truth": [world.name(o)]}]
    port = [{"prompt": q, "ground_truth": world.name(o)} for _, q, o in reasoning(world, f, f.counterfactual, 1)]
    return {"subject": s, "target_new": new, "prompt": prompt, "ground_truth": [true],
            "rephrase_prompt": rel.rephrase.replace("{s}", s), "cond": f"{true} >> {new} || {prompt}",
            "locality": _drop_empty({"Relation_Specificity": loc}), "portability": _drop_empty({"Reasoning": port})}


def counterfact_record(world: World, f: Fact) -> dict[str, Any]:
    """One KnowEdit wiki_counterfact record."""
    rel = world.relation(f.rid)
    s, new = world.name(f.subject), f.counterfactual
    alias = subject_aliasing(world, f)
    port = {
        "Subject_Aliasing": [] if alias is None else [{"prompt": alias, "ground_truth": world.name(new)}],
        "Reasoning": [{"prompt": p, "ground_truth": [names_with_alias(world, o)]}
                      for p, _, o in reasoning(world, f, new, limit=2)],
        "Logical_Generalization": [{"prompt": p, "ground_truth": [[a] for a in answers]}
                                   for p, answers in logical(world, f, new)],
    }
    fp, fa = forgetfulness(world, f, new)
    loc = {"Relation_Specificity": [{"prompt": cloze(r, s), "ground_truth": world.name(o)}
                                    for r, o in relation_specificity(world, f)],
           "Forgetfulness": [{"prompt": fp, "ground_truth": fa}]}
    return {"subject": s, "prompt": cloze(rel, s), "target_new": world.name(new),
            "ground_truth": world.name(f.obj), "portability": _drop_empty(port), "locality": _drop_empty(loc)}


def emit_knowedit_facts(world: World, out: Path, sizes: dict[str, tuple[int, ...]], counts: dict[str, int]) -> None:
    """Write wiki_recent, ZsRE and wiki_counterfact; `sizes` has keys "recent", "zsre", "counterfact_kn"."""
    recent = shuffled(world, "recent", recent_facts_for_editing(world))
    for name, part in zip(("train", "test"), take_splits(recent, sizes["recent"]), strict=True):
        write(out, f"wiki_recent/recent_{name}.json", [recent_record(world, f) for f in part], counts)
    _, eval_, _ = zsre_partition(world, sizes["zsre"])  # type: ignore[arg-type]
    write(out, "ZsRE/ZsRE-test-all.json", [zsre_test_record(world, f) for f in eval_], counts)
    cf = shuffled(world, "wiki_counterfact", world.known_facts)
    for name, part in zip(("train", "test"), take_splits(cf, sizes["counterfact_kn"]), strict=True):
        write(out, f"wiki_counterfact/{name}_cf.json", [counterfact_record(world, f) for f in part], counts)
