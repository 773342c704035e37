"""CLI and library entry point that writes the whole synthetic world to disk (a DVC stage output).

    python -m core.world.build --profile default --seed 0 --out data/world/default

Output tree (every file deterministic: the same profile and seed give byte-identical files):

    world.json          profile, seed, cutoff, relations (with frames), entities, facts, topics, trivia, nq, filler
    corpus.jsonl        pretraining corpus, one {"text": ...} per line, in training order
    probes.json         recall probes {"trained"|"recombined"|"question_unasked"|"free_paraphrase": [{prompt, answer}]}
    stats.json          record counts per file, fact counts per relation and status, corpus size
    wiki_recent/recent_{train,test}.json           KnowEdit WikiData_recent (insertions)
    ZsRE/ZsRE-test-all.json                        KnowEdit ZsRE
    WikiBio/wikibio-{train,test}-all.json          KnowEdit WikiBio
    wiki_counterfact/{train,test}_cf.json          KnowEdit WikiData_counterfact
    convsent/blender_{train,val,test}.json         KnowEdit ConvSent
    Sanitation/trivia_qa_{train,test}.json         KnowEdit Sanitation
    zsre/zsre_mend_{train,eval,edit}.json          ZsRE, MEND trainer layout
    zsre/zsre_mend_eval_portability_gpt4.json      ZsRE eval + "portability" (InstructEdit's held-out test)
    counterfact/counterfact.json                   CounterFact, ROME layout
    counterfact/counterfact-{train,val,edit}.json  CounterFact, EasyEdit request form (MEND/SERAC trainer)
    wise/ZsRE/zsre_mend_{edit,train}.json          WISE ZsRE
    wise/hallucination/hallucination-{edit,train}.json
    wise/temporal/temporal-{edit,train}.json
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from core.io import write_json, write_jsonl
from core.world.corpus import pretraining_corpus
from core.world.emit_common import write
from core.world.emit_counterfact import emit_counterfact
from core.world.emit_knowedit import emit_knowedit_facts
from core.world.emit_knowedit_text import emit_knowedit_text
from core.world.emit_mend import emit_mend
from core.world.emit_wise import emit_wise
from core.world.generate import build_world
from core.world.probes import recall_probes
from core.world.profiles import world_size
from core.world.relations import recombined_frames, training_frames
from core.world.schema import World

log = logging.getLogger(__name__)


def world_to_json(world: World) -> dict[str, Any]:
    """The world as plain JSON data (relations include their training and recombined frames)."""
    rels = [{**dataclasses.asdict(r), "training_frames": list(training_frames(r)),
             "recombined_frames": list(recombined_frames(r))} for r in world.relations]
    return {"profile": world.profile, "seed": world.seed, "cutoff": world.cutoff, "relations": rels,
            "entities": [dataclasses.asdict(e) for e in world.entities],
            "facts": [dataclasses.asdict(f) for f in world.facts],
            "topics": [dataclasses.asdict(t) for t in world.topics],
            "trivia": [dataclasses.asdict(t) for t in world.trivia],
            "nq": [dataclasses.asdict(q) for q in world.nq], "filler": list(world.filler)}


def write_world(world: World, out_dir: str | Path) -> dict[str, Any]:
    """Write every file of the tree above into `out_dir`; return the stats written to stats.json."""
    out = Path(out_dir)
    sz = world_size(world.profile)
    counts: dict[str, int] = {}
    write_json(out / "world.json", world_to_json(world))
    corpus = pretraining_corpus(world)
    write_jsonl(out / "corpus.jsonl", ({"text": d} for d in corpus))
    probes = recall_probes(world)
    write(out, "probes.json", {k: [dataclasses.asdict(p) for p in v] for k, v in probes.items()}, counts)
    emit_knowedit_facts(world, out, {"recent": sz.recent, "zsre": sz.zsre, "counterfact_kn": sz.counterfact_kn},
                        counts)
    emit_knowedit_text(world, out, sz.wikibio, counts)
    emit_mend(world, out, sz.zsre, counts)
    emit_counterfact(world, out, sz.counterfact_rome, sz.counterfact_easyedit, counts)
    emit_wise(world, out, sz.wise_hallucination, sz.wise_temporal, counts)
    by_rel = Counter(f"{f.rid}/{f.status}" for f in world.facts)
    stats = {
        "profile": world.profile, "seed": world.seed, "records": dict(sorted(counts.items())),
        "facts": {"known": len(world.known_facts), "recent": len(world.recent_facts),
                  "asked_known": sum(f.asked for f in world.known_facts), "by_relation": dict(sorted(by_rel.items()))},
        "entities": dict(sorted(Counter(e.etype for e in world.entities).items())),
        "corpus": {"documents": len(corpus), "words": sum(len(d.split()) for d in corpus)},
    }
    write_json(out / "stats.json", stats)
    return stats


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, build the world and write it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stats = write_world(build_world(args.profile, args.seed), args.out)
    log.info("wrote %s: %d known facts, %d corpus documents, %d records in %d files", args.out,
             stats["facts"]["known"], stats["corpus"]["documents"], sum(stats["records"].values()),
             len(stats["records"]))


if __name__ == "__main__":
    main()
