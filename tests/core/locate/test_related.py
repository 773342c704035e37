"""Related-fact groups from the world (KnowEdit §5.2, Figs. 8-9): construction checked against the world
graph, golden RSim / chance / peak numbers on hand-made traces, and tracing on a tiny model."""

from __future__ import annotations

import math

import pytest
import torch

from core.eval.scoring import score_answers
from core.locate import TraceResult, trace_fact
from core.locate.related import (
    GROUP_KINDS,
    FactGroup,
    LocateItem,
    causal_case,
    causal_cases,
    chain_subjects,
    chance_rsim,
    keep_known,
    known_items,
    peak_agreement,
    peak_layers,
    related_groups,
    rsim_rows,
    trace_groups,
)
from core.models.tiny import build_tiny_model
from core.world import build_world


@pytest.fixture(scope="module")
def world():
    return build_world("smoke", 0)


def test_chain_subjects_follow_the_world_graph(world):
    pool = chain_subjects(world)
    assert len(pool) >= 10
    for eid in pool:
        city, nation, lang = (world.value(eid, r) for r in ("P19", "P27", "P103"))
        assert world.value(city, "P17") == nation and world.value(nation, "P37") == lang
    broken = [p.eid for p in world.of_type("person") if p.eid not in pool]
    assert broken, "the smoke world should have persons outside the chain (citizenship drawn at random)"


def test_related_groups_structure(world):
    groups = related_groups(world, 3, seed=0, max_items=5)
    assert tuple(groups) == GROUP_KINDS and all(len(gs) == 3 for gs in groups.values())
    for i in range(3):
        anchors = {gs[i].items[0] for gs in groups.values()}
        assert len(anchors) == 1  # one anchor fact per index, shared by the four kinds
    for kind, gs in groups.items():
        for g in gs:
            assert g.kind == kind and 2 <= len(g.items) <= 5 and g.items[0].role == "anchor"
            assert all(it.subject in it.prompt for it in g.items)
    eid = groups["consistency"][0].key.split("/")[0]
    anchor = groups["consistency"][0].items[0]
    assert anchor.answer == world.name(world.value(eid, "P27"))
    assert all(it.answer == anchor.answer for it in groups["consistency"][0].items)
    rel = related_groups(world, 1, seed=0, max_items=20)["relevance"][0].items  # nothing sampled out
    assert [it.role.split(":")[0] for it in rel] == ["anchor", "bridge", "entailed"] + ["hop"] * (
        len(rel) - 3
    )
    same = groups["same_subject"][0].items[1:]
    assert all(
        it.subject == anchor.subject and it.role.split(":")[1] not in ("P19", "P27", "P103") for it in same
    )
    other = groups["other_subject"][0].items[1:]
    assert all(
        it.subject != anchor.subject and it.prompt.startswith("The country of citizenship of") for it in other
    )


def test_related_groups_are_seeded(world):
    assert related_groups(world, 4, seed=1) == related_groups(world, 4, seed=1)
    assert related_groups(world, 4, seed=1) != related_groups(world, 4, seed=2)
    with pytest.raises(ValueError):
        related_groups(world, 10_000)
    with pytest.raises(ValueError):
        related_groups(world, 2, max_items=1)


def test_causal_case_matches_the_world(world):
    eid = chain_subjects(world)[0]
    a, b, c = causal_case(world, eid).items
    assert a.answer == world.name(world.value(eid, "P27"))
    assert b.answer == world.name(world.value(world.value(eid, "P27"), "P37"))  # 2 hops: S -> C -> L
    assert c.answer == world.name(world.value(eid, "P106"))
    assert [it.role for it in (a, b, c)] == ["(a) fact", "(b) 2-hop", "(c) unrelated"]
    assert len(causal_cases(world, 3, seed=0)) == 3


def test_keep_known_golden():
    items = [LocateItem(f"p{i} S", "S", "a", f"r{i}") for i in range(4)]
    g1 = FactGroup("consistency", "x", tuple(items[:3]))
    g2 = FactGroup("consistency", "y", (items[3], items[1]))
    known = {items[0]: True, items[1]: False, items[2]: True, items[3]: False}
    assert keep_known([g1, g2], known) == [
        FactGroup("consistency", "x", (items[0], items[2]))
    ]  # g2: anchor unknown
    assert keep_known([g1], known, min_items=3) == []


def test_known_items_agrees_with_teacher_forced_argmax():
    model, tok = build_tiny_model("gpt2", seed=0)
    items = [
        LocateItem("Alice Brown was born in", "Alice Brown", ans, "r") for ans in ("Lyon", "Riga", "Oslo")
    ]
    known = known_items(model, tok, items + items[:1])
    scores = score_answers(model, tok, [it.prompt for it in items], [it.answer for it in items])
    assert known == {it: bool(s.argmax_ids[0] == s.label_ids[0]) for it, s in zip(items, scores, strict=True)}


def test_chance_rsim_golden():
    assert chance_rsim(4, 1) == pytest.approx(1 / 4)
    assert chance_rsim(4, 2) == pytest.approx(7 / 18)  # P(|A∩B|=1) = 4/6 -> J 1/3; P(=2) = 1/6 -> J 1
    assert chance_rsim(4, 3) == pytest.approx(3 / 4 * 2 / 4 + 1 / 4)
    assert chance_rsim(4, 4) == 1.0 and chance_rsim(2, 1) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        chance_rsim(4, 5)


def _trace(effect: list[float]) -> TraceResult:
    """A 2-token trace (subject = token 0) whose last-subject column is `effect` and last column is flat."""
    col = torch.tensor(effect)
    return TraceResult(
        prompt="p",
        subject="s",
        answer="a",
        tokens=("s", "x"),
        subject_range=(0, 1),
        answer_ids=(0,),
        kind="mlp",
        severed=None,
        window=1,
        noise_std=1.0,
        clean_prob=1.0,
        corrupted_prob=0.0,
        restored=torch.stack([col, torch.full_like(col, 0.9)], dim=1),
    )


def test_rsim_rows_and_peaks_golden():
    anchor, same, other = (
        _trace([0.9, 0.5, 0.1, 0.0]),
        _trace([0.8, 0.6, 0.0, 0.0]),
        _trace([0.0, 0.0, 0.2, 0.9]),
    )
    traces = {"consistency": [[anchor, same, other]], "same_subject": [[anchor, same], [other]]}
    rows = {(r["kind"], r["k"]): r for r in rsim_rows(traces, 4, ks=[1, 2])}
    # anchor-member pairs only: k=1 {0} vs {0}, {3} -> (1 + 0) / 2; k=2 {0,1} vs {0,1}, {2,3} -> (1 + 0) / 2
    assert rows[("consistency", 1)]["rsim"] == pytest.approx(0.5) and rows[("consistency", 2)]["rsim"] == 0.5
    assert rows[("same_subject", 1)]["rsim"] == 1.0 and rows[("same_subject", 1)]["n_groups"] == 1
    assert rows[("consistency", 1)]["klob"] == "klob-r" and rows[("consistency", 2)][
        "chance"
    ] == pytest.approx(7 / 18)
    assert len(rsim_rows(traces, 4, tokens=("last_subject", "max"))) == 2 * 2 * 4  # k = 1..4 by default
    empty = rsim_rows({"relevance": [[anchor]]}, 4, ks=[2])[0]
    assert math.isnan(empty["rsim"]) and empty["n_groups"] == 0 and empty["chance"] == pytest.approx(7 / 18)
    assert peak_layers([anchor, same, other]) == [0, 0, 3]
    assert peak_layers([anchor], token="max") == [0]  # max over tokens: 0.9 ties at layers 0-3, lowest wins


def test_trace_groups_skip_positions_before_the_subject_exactly():
    model, tok = build_tiny_model("gpt2", seed=1)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(8.0)  # as test_causal_trace: predictions that depend on the input
    item = LocateItem("The city where Alice Brown lives is", "Alice Brown", "Oslo", "anchor")
    (traces,) = trace_groups(model, tok, [FactGroup("case", "k", (item,))], n_samples=3, noise_scale=3.0)
    full = trace_fact(
        model,
        tok,
        item.prompt,
        item.subject,
        item.answer,
        kind="mlp",
        n_samples=3,
        noise_std=traces[0].noise_std,
    )
    b = traces[0].subject_range[0]
    assert b > 0 and traces[0].kind == "mlp"
    torch.testing.assert_close(traces[0].restored, full.restored, atol=1e-6, rtol=0)
    assert (traces[0].restored[:, :b] == traces[0].corrupted_prob).all()


def test_peak_agreement_golden():
    a, b, c = _trace([0.9, 0.1, 0.0, 0.0]), _trace([0.2, 0.8, 0.0, 0.0]), _trace([0.0, 0.0, 0.0, 0.5])
    out = peak_agreement([[a, a, a], [a, b, c], [a, a, c]])  # peaks (0,0,0), (0,1,3), (0,0,3)
    assert out == pytest.approx(
        {
            "n_cases": 3,
            "all_same": 1 / 3,
            "a=b": 2 / 3,
            "a=c": 1 / 3,
            "b=c": 1 / 3,
            "peak_a": 0.0,
            "peak_b": 1 / 3,
            "peak_c": 2.0,
        }
    )
    assert peak_agreement([]) == {"n_cases": 0}
