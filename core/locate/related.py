"""Groups of related facts built from the synthetic world, traced for RSim (KnowEdit §5.2, Fig. 8) and
for the causal-tracing case (Fig. 9).

KnowEdit measures RSim on KLoB's klob-r and klob-c sets (papers.md §2.7 labels them consistency and
relevance); their exact construction is [NF] here, so these are our analogues, each a group whose
first item is the ANCHOR fact (S, country of citizenship, C) of a person S whose world chain is
consistent: S --place of birth--> city --country--> C --official language--> L, with S's citizenship C and
native language L (the world makes this true for most persons; `chain_subjects`). Kinds:

* "consistency" (klob-r analogue): the same fact expressed differently: the other training frames of
  the relation, its question form, the two held-out recombined frames, and the cloze with S's alias;
* "relevance" (klob-c analogue): facts that share the anchor's knowledge: the bridge (S, place of birth,
  city), the entailed (S, native language, L), and the explicit compositions through C ("The capital of
  the country of citizenship of S is"), `core.world.portability.reasoning`;
* "same_subject" (control; Fig. 9c): unrelated facts of S (occupation, field, employer, ...);
* "other_subject" (control): the anchor relation for other persons.
If locating finds the entity rather than the fact (KnowEdit's reading of Fig. 9), same_subject groups
overlap as much as related ones, and other_subject groups less.

The case of Fig. 9 (`causal_case`): (a) (S, citizenship, C), the analogue of "SMAP created in Japan";
(b) (S, native language, L), the 2-hop fact S -> C -> L stated directly in the corpus (our world LMs do
not answer the explicit composition, which was never trained); (c) (S, occupation, O), unrelated.
`filter_known` keeps the items a model answers (first answer token is the argmax), as ROME traces
known facts only.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from math import comb
from typing import Literal

import torch
from torch import nn

from core.eval.scoring import score_answers
from core.locate.causal_trace import TraceResult, subject_embedding_std, trace_fact
from core.locate.patching import Site
from core.locate.rsim import TokenChoice, layer_scores, mean_rsim_curve
from core.world.portability import cloze, reasoning
from core.world.relations import fill, recombined_frames, training_frames
from core.world.schema import World

GroupKind = Literal["consistency", "relevance", "same_subject", "other_subject"]
GROUP_KINDS: tuple[GroupKind, ...] = ("consistency", "relevance", "same_subject", "other_subject")
KLOB_ANALOGUE: dict[str, str] = {"consistency": "klob-r", "relevance": "klob-c"}
ANCHOR, BRIDGE, ENTAILED, UNRELATED = "P27", "P19", "P103", "P106"
_CHAIN = (ANCHOR, BRIDGE, ENTAILED)


@dataclass(frozen=True)
class LocateItem:
    """One prompt to trace: `subject` occurs in `prompt`, `answer` is the expected continuation."""

    prompt: str
    subject: str
    answer: str
    role: str  # e.g. "anchor", "frame:2", "question", "alias", "bridge:P19", "hop:P36", "other:P106"


@dataclass(frozen=True)
class FactGroup:
    """Related items; `items[0]` is the anchor fact. `key` names the anchor as "<subject id>/<kind>"."""

    kind: str
    key: str
    items: tuple[LocateItem, ...]


def chain_subjects(world: World) -> list[str]:
    """Persons whose citizenship is their birth city's country and whose native language is its language."""
    out = []
    for p in world.of_type("person"):
        city, nation, lang = (world.value(p.eid, r) for r in (BRIDGE, ANCHOR, ENTAILED))
        if None in (city, nation, lang) or world.value(city, "P17") != nation:
            continue
        if world.value(nation, "P37") == lang and world.value(p.eid, UNRELATED) is not None:
            out.append(p.eid)
    return out


def _item(world: World, eid: str, rid: str, role: str, subject: str | None = None) -> LocateItem:
    s = subject or world.name(eid)
    return LocateItem(cloze(world.relation(rid), s), s, world.name(world.value(eid, rid)), role)


def _consistency(world: World, eid: str) -> list[LocateItem]:
    rel, s, answer = world.relation(ANCHOR), world.name(eid), world.name(world.value(eid, ANCHOR))
    items = [LocateItem(fill(f, s), s, answer, f"frame:{i}") for i, f in enumerate(training_frames(rel)) if i]
    items.append(LocateItem(rel.question.replace("{s}", s), s, answer, "question"))
    items += [
        LocateItem(fill(f, s), s, answer, f"recombined:{i}") for i, f in enumerate(recombined_frames(rel))
    ]
    alias = world.entity(eid).alias
    if alias is not None:
        items.append(_item(world, eid, ANCHOR, "alias", subject=alias))
    return items


def _relevance(world: World, eid: str) -> list[LocateItem]:
    items = [
        _item(world, eid, BRIDGE, f"bridge:{BRIDGE}"),
        _item(world, eid, ENTAILED, f"entailed:{ENTAILED}"),
    ]
    fact = world.lookup(eid, ANCHOR)
    s = world.name(eid)
    hops = reasoning(world, fact, fact.obj, limit=3)
    items += [LocateItem(p, s, world.name(o), f"hop:{p.count(' of the ')}") for p, _, o in hops]
    return items


def _same_subject(world: World, eid: str) -> list[LocateItem]:
    facts = world.facts_about(eid, "known")
    return [_item(world, eid, f.rid, f"other:{f.rid}") for f in facts if f.rid not in _CHAIN]


def related_groups(
    world: World, n_groups: int, *, seed: int = 0, max_items: int = 6
) -> dict[str, list[FactGroup]]:
    """`n_groups` groups of each kind (GROUP_KINDS), anchored on the same seeded sample of chain subjects.

    Each group holds the anchor and at most `max_items - 1` members, a seeded sample kept in list order
    (RSim is the mean over anchor-member pairs, so the cap changes its variance, not its expectation).
    """
    if max_items < 2:
        raise ValueError(f"max_items must be >= 2 (anchor + one member), got {max_items}")
    pool = chain_subjects(world)
    if n_groups > len(pool):
        raise ValueError(f"{n_groups} groups asked for but the world has {len(pool)} chain subjects")
    rng = random.Random(seed)
    anchors = rng.sample(pool, n_groups)
    out: dict[str, list[FactGroup]] = {k: [] for k in GROUP_KINDS}
    for eid in anchors:
        head = _item(world, eid, ANCHOR, "anchor")
        rest = [e for e in pool if e != eid]
        others = rng.sample(rest, min(len(rest), max_items - 1))
        bodies = {
            "consistency": _consistency(world, eid),
            "relevance": _relevance(world, eid),
            "same_subject": _same_subject(world, eid),
            "other_subject": [_item(world, e, ANCHOR, f"subject:{e}") for e in others],
        }
        for kind, body in bodies.items():
            keep = sorted(rng.sample(range(len(body)), min(len(body), max_items - 1)))
            out[kind].append(FactGroup(kind, f"{eid}/{kind}", (head, *(body[i] for i in keep))))
    return out


def causal_case(world: World, eid: str) -> FactGroup:
    """Fig. 9's three facts of person `eid`: (a) citizenship, (b) native language (2-hop), (c) occupation."""
    items = (
        _item(world, eid, ANCHOR, "(a) fact"),
        _item(world, eid, ENTAILED, "(b) 2-hop"),
        _item(world, eid, UNRELATED, "(c) unrelated"),
    )
    return FactGroup("case", f"{eid}/case", items)


def causal_cases(world: World, n: int, *, seed: int = 0) -> list[FactGroup]:
    """`causal_case` for n seeded chain subjects."""
    pool = chain_subjects(world)
    return [causal_case(world, eid) for eid in random.Random(seed).sample(pool, min(n, len(pool)))]


def known_items(model: nn.Module, tok, items: Sequence[LocateItem], *, batch_size: int = 64) -> dict:
    """{item: True when the model's argmax after the prompt is the answer's first token} (teacher forced)."""
    items = list(dict.fromkeys(items))
    scores = score_answers(model, tok, [it.prompt for it in items], [it.answer for it in items],
                           batch_size=batch_size)  # fmt: skip
    return {it: bool(sc.argmax_ids[0] == sc.label_ids[0]) for it, sc in zip(items, scores, strict=True)}


def keep_known(groups: Sequence[FactGroup], known: Mapping[LocateItem, bool], *, min_items: int = 2) -> list:
    """Groups reduced to their known items; a group whose anchor is unknown or that keeps fewer than
    `min_items` items is dropped (ROME traces only facts the model knows)."""
    out = []
    for g in groups:
        kept = tuple(it for it in g.items if known[it])
        if known[g.items[0]] and len(kept) >= min_items:
            out.append(replace(g, items=kept))
    return out


def filter_known(
    model: nn.Module, tok, groups: Sequence[FactGroup], *, min_items: int = 2
) -> list[FactGroup]:
    """`keep_known` with the model's own answers (`known_items`)."""
    return keep_known(
        groups, known_items(model, tok, [it for g in groups for it in g.items]), min_items=min_items
    )


def trace_groups(
    model: nn.Module,
    tok,
    groups: Sequence[FactGroup],
    *,
    kind: Site = "mlp",
    n_samples: int = 10,
    noise_scale: float = 3.0,
    seed: int = 0,
) -> list[list[TraceResult]]:
    """Causal traces of every item; noise std = `noise_scale` x ROME's σ over all the groups' subjects."""
    subjects = sorted({it.subject for g in groups for it in g.items})
    std = noise_scale * subject_embedding_std(model, tok, subjects) if subjects else 0.0
    return [
        [
            trace_fact(
                model,
                tok,
                it.prompt,
                it.subject,
                it.answer,
                kind=kind,
                n_samples=n_samples,
                noise_std=std,
                seed=seed,
                positions="from_subject",
            )
            for it in g.items
        ]
        for g in groups
    ]


def chance_rsim(n_layers: int, k: int) -> float:
    """E[|A ∩ B| / |A ∪ B|] for two independent uniform k-subsets of n_layers layers (hypergeometric)."""
    if not 1 <= k <= n_layers:
        raise ValueError(f"k={k} outside [1, {n_layers}]")
    total = comb(n_layers, k)
    return sum(comb(k, i) * comb(n_layers - k, k - i) / total * i / (2 * k - i) for i in range(k + 1))


def rsim_rows(
    traces: dict[str, list[list[TraceResult]]],
    n_layers: int,
    *,
    ks: Sequence[int] | None = None,
    tokens: Sequence[TokenChoice] = ("last_subject",),
) -> list[dict[str, object]]:
    """Tidy rows (kind, klob, token, k, rsim, n_groups, chance) for k in `ks` (default 1..n_layers).

    rsim is the anchor-vs-member RSim averaged over the groups with a member (NaN when there is none).
    """
    ks = list(ks) if ks is not None else list(range(1, n_layers + 1))
    rows = []
    for kind, groups in traces.items():
        n_groups = sum(len(g) > 1 for g in groups)
        for token in tokens:
            curve = mean_rsim_curve(groups, ks, token=token, anchor=0)
            rows += [{"kind": kind, "klob": KLOB_ANALOGUE.get(kind, ""), "token": token, "k": k, "rsim": value,
                      "n_groups": n_groups, "chance": chance_rsim(n_layers, k)}
                     for k, value in zip(ks, curve, strict=True)]  # fmt: skip
    return rows


def peak_layers(group: Sequence[TraceResult], *, token: TokenChoice = "last_subject") -> list[int]:
    """The layer of largest indirect effect of each trace (lowest layer on ties)."""
    return [int(torch.argmax(layer_scores(r, token=token))) for r in group]


def peak_agreement(groups: Sequence[Sequence[TraceResult]], *, token: TokenChoice = "last_subject") -> dict:
    """Over groups of traces of (a, b, c) (Fig. 9): how often the peak layers agree, and their means.

    Keys: n_cases; all_same (the three peaks equal); a=b, a=c, b=c (pairs equal); peak_a, peak_b, peak_c.
    """
    peaks = torch.tensor([peak_layers(g, token=token) for g in groups], dtype=torch.float64).view(-1, 3)
    if not len(peaks):
        return {"n_cases": 0}
    eq = {f"{x}={y}": (peaks[:, i] == peaks[:, j]).double().mean().item()
          for (i, x), (j, y) in combinations(enumerate("abc"), 2)}  # fmt: skip
    same = (peaks == peaks[:, :1]).all(1).double().mean().item()
    means = {f"peak_{x}": peaks[:, i].mean().item() for i, x in enumerate("abc")}
    return {"n_cases": len(peaks), "all_same": same, **eq, **means}
