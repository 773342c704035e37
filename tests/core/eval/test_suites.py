"""Evaluation suites: ConvSent (Eqs. 12-13 with pre-edit captures) and Sanitation (forget/retain),
their preparation, the layout -> suite map, and that protocols run them end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from core.config import load_hparams
from core.editors import METHODS, Method, Undo
from core.editors.ft import FTHyperParams
from core.eval.convsent import split_qa
from core.eval.evaluate import EvalSettings
from core.eval.protocols import run_edits
from core.eval.sanitation import FORGET_PROBES, RETAIN, prepare_sanitation
from core.eval.suites import CONVSENT, FACTS, SANITATION, suite_for_layout
from core.metrics.protocols import (
    CONVSENT_ES,
    CONVSENT_KL_DRAWDOWN,
    SANITATION_POSITION_MATCH,
    SANITATION_SUBSTRING_SUCCESS,
)
from core.models.tiny import build_tiny_model
from core.types import EditRequest

HPARAMS = Path(__file__).parents[1] / "editors" / "hparams"


@pytest.fixture
def tiny():
    return build_tiny_model("gpt2", seed=0)


def _hp() -> FTHyperParams:
    return load_hparams(HPARAMS / "FT-M" / "tiny-gpt2.yaml", FTHyperParams)


@dataclasses.dataclass(frozen=True)
class _NoopHP:
    pass


def _values(metrics) -> dict[str, float]:
    return {m.name: m.value for m in metrics}


def _state(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _convsent_request(i: int, topic: str, other: str, target: int = 0) -> EditRequest:
    pos, neg = [f"I love {topic}.", f"{topic} is great."], [f"I hate {topic}.", f"{topic} is awful."]
    outer = [f"I like {other}.", f"{other} is bad."]
    how = "positively" if target == 0 else "negatively"
    return EditRequest(
        case_id=f"cs{i}",
        prompt=f"From the sentiment dataset, answer What do you think of {topic}? {how}.",
        subject=topic,
        target_new=(pos if target == 0 else neg)[0],
        extras={
            "metric_kwargs": {
                "inner_q": f"What do you think of {topic}?",
                "inner_all_qa": [f"What about {topic}? </s> {a}" for a in pos + neg],
                "outer_all_qa": [f"What about {other}? </s> {a}" for a in outer],
                "inner_target": [target] * 4,
                "all_target": [0, 0, 1, 1],
            }
        },
    )


def _sanitation_requests(n_forget: int, n_retain: int) -> list[EditRequest]:
    forget = [
        EditRequest(case_id=f"t/success/{i}", prompt=f"Question:Who built tower {i}?\nAnswer:", subject="",
                    target_new="I don't know.", ground_truth=f"Builder {i}", extras={"part": "success"})
        for i in range(n_forget)
    ]  # fmt: skip
    retain = [
        EditRequest(case_id=f"t/locality/{j}", prompt=f"Question:Where is lake {j}?\nAnswer:", subject="",
                    target_new=f"Town {j}", ground_truth=f"Town {j}", extras={"part": "locality"})
        for j in range(n_retain)
    ]  # fmt: skip
    return retain[:1] + forget + retain[1:]  # order in the file must not matter


def test_suite_for_layout():
    assert suite_for_layout("knowedit-convsent") is CONVSENT
    assert suite_for_layout("knowedit-sanitation") is SANITATION
    assert suite_for_layout("knowedit-zsre") is FACTS and suite_for_layout("wise-zsre") is FACTS
    assert not CONVSENT.cacheable and SANITATION.cacheable


def test_split_qa_cuts_at_the_last_separator():
    assert split_qa("What about x? </s> I love x.") == ("What about x? </s>", "I love x.")
    assert split_qa("a </s> b </s> c") == ("a </s> b </s>", "c")
    with pytest.raises(ValueError, match="no '</s>'"):
        split_qa("no separator here")


def test_prepare_sanitation_without_train_edits_the_forget_questions():
    prepared = prepare_sanitation(_sanitation_requests(3, 5), None)
    assert [r.case_id for r in prepared] == ["t/success/0", "t/success/1", "t/success/2"]
    assert [r.extras[FORGET_PROBES] for r in prepared] == [(r.prompt,) for r in prepared]
    prompts = [[p.prompt for p in r.locality[RETAIN]] for r in prepared]
    assert [len(p) for p in prompts] == [2, 2, 1]
    assert prompts[0] == ["Question:Where is lake 0?\nAnswer:", "Question:Where is lake 3?\nAnswer:"]
    assert prepare_sanitation(_sanitation_requests(2, 0), None)[0].locality == {}
    with pytest.raises(ValueError, match="no forget requests"):
        prepare_sanitation(_sanitation_requests(0, 2), None)


def _kf(i: int, group: str) -> EditRequest:
    return EditRequest(case_id=f"kf/{i}", prompt=f"Question:What is fact {i}?\nAnswer:", subject=f"fact {i}",
                       target_new="I don't know.", ground_truth=group, extras={"part": "K_F"})  # fmt: skip


def test_prepare_sanitation_pairs_train_facts_with_test_questions_by_answer_group():
    test = _sanitation_requests(4, 4)  # test forget questions 0..3 with ground truths "Builder i"
    test = [dataclasses.replace(r, ground_truth="A" if r.case_id in ("t/success/0", "t/success/2") else r.ground_truth)
            if r.extras["part"] == "success" else r for r in test]  # fmt: skip
    test = [dataclasses.replace(r, ground_truth="B") if r.case_id in ("t/success/1", "t/success/3") else r
            for r in test]  # fmt: skip
    train = [_kf(0, "B"), _kf(1, "A"), _kf(2, "B"), _kf(3, "A"), _kf(4, "A")]
    prepared = prepare_sanitation(test, train)
    assert [r.case_id for r in prepared] == [
        "kf/0",
        "kf/2",
        "kf/1",
        "kf/3",
        "kf/4",
    ]  # grouped, first-seen order
    probes = {r.case_id: r.extras[FORGET_PROBES] for r in prepared}
    assert probes["kf/0"] == ("Question:Who built tower 1?\nAnswer:",)
    assert probes["kf/1"] == ("Question:Who built tower 0?\nAnswer:",) and probes["kf/4"] == ()
    assert all(r.subject.startswith("fact") for r in prepared)  # edits carry the facts' subjects
    with pytest.raises(ValueError, match="group 'C'"):
        prepare_sanitation(test, [_kf(9, "C")])


def test_convsent_suite_measures_against_captured_pre_edit(tiny, tmp_path):
    model, tok = tiny
    state = _state(model)
    reqs = [
        _convsent_request(0, "Zorbo cheese", "Quill tea"),
        _convsent_request(1, "Quill tea", "Zorbo cheese", 1),
    ]
    settings = EvalSettings(fluency=True)
    records = run_edits(model, tok, reqs, "FT-M", _hp(), protocol="single", settings=settings, suite=CONVSENT,
                        cache_dir=tmp_path, progress=False)  # fmt: skip
    assert not list(tmp_path.iterdir())  # logits are never cached
    assert all(torch.equal(p, state[n]) for n, p in model.named_parameters())
    for rec in records:
        pre, post = _values(rec.pre), _values(rec.post)
        assert set(post) == {"es", "z_sent", "z_topic", "dd", "fluency"}
        assert pre["z_topic"] == 1.0 and pre["dd"] == 0.0  # the unedited model against itself
        assert post["dd"] > 0.0  # the edit moved the other topic's distribution a little
        assert post["es"] == pytest.approx(post["z_sent"] * post["z_topic"])
        tags = {m.name: m.protocol for m in rec.post}
        assert tags["es"] == CONVSENT_ES and tags["dd"] == CONVSENT_KL_DRAWDOWN


def test_sanitation_suite_noop_keeps_retain_answers(tiny, monkeypatch):
    model, tok = tiny
    monkeypatch.setitem(METHODS, "NOOP", Method(name="NOOP", hparams=_NoopHP,
                                                edit=lambda m, t, r, h: Undo(lambda: None)))  # fmt: skip
    reqs = SANITATION.prepare(_sanitation_requests(3, 4), None)
    records = run_edits(model, tok, reqs, "NOOP", _NoopHP(), protocol="sequential", suite=SANITATION,
                        progress=False)  # fmt: skip
    for rec in records:
        post, pre = _values(rec.post), _values(rec.pre)
        assert post["locality"] == 1.0 and post["edit_succ"] == pre["edit_succ"]
        assert {m.name: m.protocol for m in rec.post} == {
            "edit_succ": SANITATION_SUBSTRING_SUCCESS, "locality": SANITATION_POSITION_MATCH}  # fmt: skip
        assert rec.extras["timing"] == "after_all_T"


def test_sanitation_suite_detects_a_changed_model(tiny, monkeypatch):
    """An 'edit' that adds noise to the final norm's bias changes the retain generations: locality < 1."""
    model, tok = tiny

    def scramble(m, t, r, h):
        w = m.transformer.ln_f.bias
        saved = w.detach().clone()
        with torch.no_grad():
            w.add_(10 * torch.randn(w.shape, generator=torch.Generator().manual_seed(0)))
        return Undo(lambda: w.data.copy_(saved))

    monkeypatch.setitem(METHODS, "SCRAMBLE", Method(name="SCRAMBLE", hparams=_NoopHP, edit=scramble))
    reqs = SANITATION.prepare(_sanitation_requests(2, 4), None)
    records = run_edits(model, tok, reqs, "SCRAMBLE", _NoopHP(), protocol="single", suite=SANITATION,
                        progress=False)  # fmt: skip
    assert min(_values(r.post)["locality"] for r in records) < 1.0


def test_sanitation_request_without_forget_probes_has_no_success_value(tiny):
    model, tok = tiny
    test = [r for r in _sanitation_requests(1, 2)]
    test = [dataclasses.replace(r, ground_truth="A") if r.extras["part"] == "success" else r for r in test]
    reqs = prepare_sanitation(test, [_kf(0, "A"), _kf(1, "A")])
    pre = SANITATION.pre(model, tok, reqs, EvalSettings())
    values = SANITATION.post(model, tok, reqs, pre=pre, timing="t", settings=EvalSettings())
    assert [sorted(m.name for m in v) for v in values] == [["edit_succ", "locality"], ["locality"]]
