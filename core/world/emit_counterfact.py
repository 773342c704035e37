"""CounterFact in ROME's layout (counterfact/counterfact.json) and in EasyEdit's request form
(counterfact/counterfact-{train,val,edit}.json, easyedit-notes 3.2).

[{"case_id": int, "pararel_idx": int, "requested_rewrite": {"prompt": "The place of birth of {} is",
"relation_id": "P19", "target_new": {"str", "id"}, "target_true": {"str", "id"}, "subject"},
"paraphrase_prompts": [2], "neighborhood_prompts": [<= 10], "attribute_prompts": [<= 10],
"generation_prompts": [10]}].

* paraphrase prompts: a neutral filler sentence, then one of the relation's two held-out recombined frames
  (ROME prefixes its paraphrases with unrelated text the same way);
* neighborhood prompts: other subjects whose true object is `target_true` (answer: target_true);
* attribute prompts: subjects whose true object is `target_new` (answer: target_new);
* generation prompts: the free paraphrases, the core frames, and generic openers about the subject.
Only facts with at least one neighbour and one attribute subject are used. `pararel_idx` is the fact's
index in `world.facts`.

EasyEdit form: {"subject", "prompt" (cloze), "target_new", "ground_truth", "rephrase_prompt" (a held-out
recombined frame), "locality_prompt" (the cloze for a neighbour sharing the true object),
"locality_ground_truth" (that object)}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.world.emit_common import shuffled, take_splits, write
from core.world.portability import cloze
from core.world.relations import fill, recombined_frames, training_frames
from core.world.schema import Fact, World
from core.world.templates import FILLER_SENTENCES

MAX_PROMPTS = 10
OPENERS = ("{s} is best known for", "Here is a short note about {s}:", "Everyone has heard of {s}, because",
           "The first thing to know about {s} is", "{s} is often mentioned when")


def _filler_sentence(i: int) -> str:
    s = FILLER_SENTENCES[i % len(FILLER_SENTENCES)]
    return s.replace("{c}", "grey").replace("{n}", "three").replace("{a}", "fox")


def rome_record(world: World, f: Fact, case_id: int, pararel_idx: int, neighbours: list[str],
                attributes: list[str]) -> dict[str, Any]:
    """One ROME-layout CounterFact record."""
    rel = world.relation(f.rid)
    s = world.name(f.subject)
    frames = training_frames(rel)
    return {
        "case_id": case_id,
        "pararel_idx": pararel_idx,
        "requested_rewrite": {
            "prompt": rel.cloze.replace("{s}", "{}"), "relation_id": rel.rid,
            "target_new": {"str": world.name(f.counterfactual), "id": f.counterfactual},
            "target_true": {"str": world.name(f.obj), "id": f.obj}, "subject": s},
        "paraphrase_prompts": [f"{_filler_sentence(case_id + k)} {fill(fr, s)}"
                               for k, fr in enumerate(recombined_frames(rel))],
        "neighborhood_prompts": [fill(frames[k % len(frames)], world.name(n))
                                 for k, n in enumerate(neighbours[:MAX_PROMPTS])],
        "attribute_prompts": [fill(frames[k % len(frames)], world.name(a))
                              for k, a in enumerate(attributes[:MAX_PROMPTS])],
        "generation_prompts": [fill(fr, s) for fr in (*rel.free, *rel.cores)]
                              + [o.replace("{s}", s) for o in OPENERS],
    }


def _neighbour_index(world: World) -> dict[tuple[str, str], list[str]]:
    """(relation, object) -> subjects with that known fact, in world order."""
    index: dict[tuple[str, str], list[str]] = {}
    for fact in world.known_facts:
        index.setdefault((fact.rid, fact.obj), []).append(fact.subject)
    return index


def easyedit_record(world: World, f: Fact, neighbour: str) -> dict[str, Any]:
    """One EasyEdit request-form CounterFact record."""
    rel = world.relation(f.rid)
    s = world.name(f.subject)
    return {"subject": s, "prompt": cloze(rel, s), "target_new": world.name(f.counterfactual),
            "ground_truth": world.name(f.obj), "rephrase_prompt": fill(recombined_frames(rel)[0], s),
            "locality_prompt": cloze(rel, world.name(neighbour)), "locality_ground_truth": world.name(f.obj)}


def emit_counterfact(world: World, out: Path, n: int, easyedit: tuple[int, int, int],
                     counts: dict[str, int]) -> None:
    """Write counterfact/counterfact.json (up to `n` cases) and counterfact-{train,val,edit}.json."""
    index = _neighbour_index(world)
    position = {id(f): i for i, f in enumerate(world.facts)}
    rows = []
    for f in shuffled(world, "counterfact", world.known_facts):
        neighbours = [x for x in index.get((f.rid, f.obj), []) if x != f.subject]
        attributes = [x for x in index.get((f.rid, f.counterfactual), []) if x != f.subject]
        if neighbours and attributes:
            rows.append(rome_record(world, f, len(rows), position[id(f)], neighbours, attributes))
        if len(rows) == n:
            break
    write(out, "counterfact/counterfact.json", rows, counts)
    cases = []
    for f in shuffled(world, "counterfact_easyedit", world.known_facts):
        neighbours = [x for x in index.get((f.rid, f.obj), []) if x != f.subject]
        if neighbours:
            cases.append(easyedit_record(world, f, neighbours[0]))
    for split, part in zip(("train", "val", "edit"), take_splits(cases, easyedit), strict=True):
        write(out, f"counterfact/counterfact-{split}.json", part, counts)
