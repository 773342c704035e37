"""ZsRE in the MEND/SERAC trainer layout, and the WISE ZsRE copy (easyedit-notes section 3.2, 3.3).

Records: {"subject", "src", "pred", "rephrase", "alt", "answers", "loc", "loc_ans", "cond"} where
`src` is the relation's question (asked in training for about half the subjects), `rephrase` its held-out
rephrase, `alt` the counterfactual target, `answers` = [true object], `pred` = the true object,
`loc` = "nq question: ..." with `loc_ans`, and `cond` = "{pred} >> {alt} || {src}".

Files: zsre/zsre_mend_{train,eval}.json, zsre/zsre_mend_edit.json, zsre/zsre_mend_eval_portability_gpt4.json
(eval plus "portability": {"New Question", "New Answer"} through the edited object), and
wise/ZsRE/zsre_mend_{edit,train}.json (the same edit and train records, WISE's file names).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.world.emit_common import shuffled, take_splits, write
from core.world.portability import reasoning
from core.world.schema import Fact, World


def zsre_partition(world: World, sizes: tuple[int, int, int]) -> tuple[list[Fact], list[Fact], list[Fact]]:
    """Disjoint (train, eval, edit) known facts. Eval prefers facts with a multi-hop question and another
    known fact of the subject (KnowEdit's ZsRE test needs Reasoning portability and locality)."""
    facts = shuffled(world, "zsre", world.known_facts)

    def rich(f: Fact) -> bool:
        return bool(reasoning(world, f, f.counterfactual)) and len(world.facts_about(f.subject, "known")) > 1

    n_train, n_eval, n_edit = sizes
    eval_ = [f for f in facts if rich(f)][:n_eval]
    chosen = set(map(id, eval_))
    rest = [f for f in facts if id(f) not in chosen]
    edit, train = take_splits(rest, (n_edit, n_train))
    return train, eval_, edit


def mend_record(world: World, fact: Fact, nq_index: int) -> dict[str, Any]:
    """One MEND-layout ZsRE record with NQ locality item `nq_index`."""
    rel = world.relation(fact.rid)
    s, true, alt = world.name(fact.subject), world.name(fact.obj), world.name(fact.counterfactual)
    src = rel.question.replace("{s}", s)
    nq = world.nq[nq_index]
    return {"subject": s, "src": src, "pred": true, "rephrase": rel.rephrase.replace("{s}", s), "alt": alt,
            "answers": [true], "loc": nq.question, "loc_ans": nq.answer, "cond": f"{true} >> {alt} || {src}"}


def _records(world: World, facts: list[Fact], first: int, last: int, offset: int = 0) -> list[dict[str, Any]]:
    """Records whose NQ items cycle through world.nq[first:last] (train and edit never share one)."""
    span = max(1, last - first)
    return [mend_record(world, f, first + (offset + i) % span) for i, f in enumerate(facts)]


def emit_mend(world: World, out: Path, sizes: tuple[int, int, int], counts: dict[str, int]) -> None:
    """Write the ZsRE MEND files and the WISE ZsRE copies."""
    train, eval_, edit = zsre_partition(world, sizes)
    n_nq = len(world.nq)
    split = min(len(train), n_nq // 2)  # NQ items [0, split) for train, [split, n_nq) for eval and edit
    train_r = _records(world, train, 0, split)
    eval_r = _records(world, eval_, split, n_nq)
    edit_r = _records(world, edit, split, n_nq, offset=len(eval_))
    write(out, "zsre/zsre_mend_train.json", train_r, counts)
    write(out, "zsre/zsre_mend_eval.json", eval_r, counts)
    write(out, "zsre/zsre_mend_edit.json", edit_r, counts)
    port = []
    for f, r in zip(eval_, eval_r, strict=True):
        _, question, answer = reasoning(world, f, f.counterfactual)[0]
        port.append({**r, "portability": {"New Question": question, "New Answer": world.name(answer)}})
    write(out, "zsre/zsre_mend_eval_portability_gpt4.json", port, counts)
    write(out, "wise/ZsRE/zsre_mend_edit.json", edit_r, counts)
    write(out, "wise/ZsRE/zsre_mend_train.json", train_r, counts)
