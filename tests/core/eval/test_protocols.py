"""Edit-and-evaluate protocols: restore after single and batch edits, sequential evaluation after all T
edits (optionally also right after each), protocol and timing tags, summaries that refuse to mix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from core.config import load_hparams
from core.editors import METHODS, Method, Undo, chain_undos
from core.editors.ft import FTHyperParams
from core.eval.evaluate import EvalSettings, _fluency_seed, compute_pre_edit, evaluate_requests
from core.eval.protocols import run_edits, summarize
from core.eval.scoring import greedy_generate, sample_generate
from core.metrics import ProtocolMismatchError, ngram_fluency
from core.metrics.protocols import (
    GREEDY_TOKEN_EM,
    LOC_ARGMAX_AGREEMENT,
    NGRAM_ENTROPY,
    TEACHER_FORCED_TOKEN_ACC,
)
from core.models.tiny import TINY_SIZE, TINY_TEXTS, build_tiny_model, tiny_world_lm
from core.types import EditRecord, EditRequest, MetricValue, Probe

HPARAMS = Path(__file__).parents[1] / "editors" / "hparams"
FACTS = (
    ("Alice Brown was born in", "Riga"),
    ("Boris Kell works as a", "Porto"),
    ("The city where Clara Voss lives is", "Oslo"),
    ("Dmitri Lund was born in", "Lyon"),
)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; with two, a busy second core stalls every op."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _requests(n: int = 4) -> list[EditRequest]:
    return [
        EditRequest(
            case_id=f"c{i}",
            prompt=p,
            subject=p.split(" ")[0],
            target_new=t,
            rephrases=(f"Note: {p}",),
            portability={"Subject_Aliasing": (Probe(f"Indeed, {p}", t),)},
            locality={
                "Relation_Specificity": (
                    Probe("Greta Holm works as a", "painter"),
                    Probe("Hugo Marsh was", "born"),
                ),
                "Forgetfulness": (Probe(p, "nowhere"),),
            },
        )
        for i, (p, t) in enumerate(FACTS[:n])
    ]


def _hp(method: str = "FT-M") -> FTHyperParams:
    return load_hparams(HPARAMS / method / "tiny-gpt2.yaml", FTHyperParams)


def _state(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _assert_restored(model, state):
    assert all(torch.equal(p, state[n]) for n, p in model.named_parameters())


def _values(metrics) -> dict[str, float]:
    return {m.name: m.value for m in metrics}


@pytest.fixture
def tiny():
    return build_tiny_model("gpt2", seed=0)


def test_single_restores_and_tags(tiny):
    model, tok = tiny
    state, reqs = _state(model), _requests()
    records = run_edits(model, tok, reqs, "FT-M", _hp(), protocol="single", progress=False)
    _assert_restored(model, state)
    assert [r.case_id for r in records] == [r.case_id for r in reqs]
    for rec in records:
        assert rec.method == "FT-M" and rec.extras["timing"] == "single_edit_restore"
        assert {m.timing for m in rec.post} == {"single_edit_restore"}
        assert {m.timing for m in rec.pre} == {"pre_edit"}
        tags = {m.name: m.protocol for m in rec.post}
        assert (
            tags["reliability"] == tags["generalization"] == tags["portability"] == TEACHER_FORCED_TOKEN_ACC
        )
        assert tags["locality"] == tags["locality/Relation_Specificity"] == LOC_ARGMAX_AGREEMENT
        assert not any(m.name.startswith("locality") for m in rec.pre)
        assert _values(rec.post)["reliability"] == 1.0


def test_single_equals_manual_edit_evaluate_undo(tiny):
    model, tok = tiny
    reqs = _requests(2)
    records = run_edits(model, tok, reqs, "FT-M", _hp(), protocol="single", progress=False)
    pre = compute_pre_edit(model, tok, reqs)
    undo = METHODS["FT-M"].edit(model, tok, [reqs[1]], _hp())
    (manual,) = evaluate_requests(model, tok, [reqs[1]], pre=pre, timing="single_edit_restore")
    undo()
    assert records[1].post == manual
    assert records[1].pre == pre.metrics["c1"]


def test_sequential_evaluates_all_after_the_last_edit(tiny):
    model, tok = tiny
    state, reqs, hp = _state(model), _requests(), _hp()
    records = run_edits(
        model, tok, reqs, "FT-M", hp, protocol="sequential", eval_after_each=True, progress=False
    )
    _assert_restored(model, state)
    final, own = records[:4], records[4:]
    assert [r.extras["timing"] for r in final] == ["after_all_T"] * 4
    assert [r.extras["timing"] for r in own] == ["after_own_edit"] * 4
    assert all({m.timing for m in r.post} == {r.extras["timing"]} for r in records)
    assert [r.extras["edit_call"] for r in final] == [0, 1, 2, 3]
    # after_all_T equals evaluating every request on the model holding all T edits
    pre = compute_pre_edit(model, tok, reqs)
    undos = [METHODS["FT-M"].edit(model, tok, [r], hp) for r in reqs]
    manual = evaluate_requests(model, tok, reqs, pre=pre, timing="after_all_T")
    chain_undos(undos)()
    assert [r.post for r in final] == manual
    # the last request sees the same model right after its own edit and after all T
    last_own, last_final = _values(own[-1].post), _values(final[-1].post)
    assert last_own.keys() == last_final.keys()
    assert all(last_own[k] == pytest.approx(last_final[k]) for k in last_own)
    # the first request right after its own edit sees what the single protocol sees
    single = run_edits(model, tok, reqs[:1], "FT-M", hp, protocol="single", progress=False)
    assert _values(own[0].post) == pytest.approx(_values(single[0].post))


def test_batch_protocol_chunks_and_restores(tiny):
    model, tok = tiny
    state = _state(model)
    hp = dataclasses.replace(_hp(), batch_size=2)
    records = run_edits(model, tok, _requests(), "FT-M", hp, protocol="batch", batch_size=2, progress=False)
    _assert_restored(model, state)
    assert [r.extras["edit_call"] for r in records] == [0, 0, 1, 1]
    assert {m.timing for r in records for m in r.post} == {"batch_edit_restore"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class _NoopHP:
    pass


def _noop(model, tok, requests, hp) -> Undo:
    return Undo(lambda: None, "no-op")


def test_noop_editor_keeps_locality_and_reliability(tiny, monkeypatch):
    model, tok = tiny
    monkeypatch.setitem(METHODS, "NOOP", Method(name="NOOP", hparams=_NoopHP, edit=_noop))
    records = run_edits(model, tok, _requests(), "NOOP", _NoopHP(), protocol="sequential", progress=False)
    for rec in records:
        post, pre = _values(rec.post), _values(rec.pre)
        assert post["locality"] == post["locality/Forgetfulness"] == 1.0
        assert all(post[k] == pre[k] for k in pre)


def test_sequential_failure_undoes_earlier_edits(tiny, monkeypatch):
    model, tok = tiny
    state, calls = _state(model), []

    def flaky(model, tok, requests, hp):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return METHODS["FT-M"].edit(model, tok, requests, hp)

    monkeypatch.setitem(METHODS, "FLAKY", Method(name="FLAKY", hparams=FTHyperParams, edit=flaky))
    with pytest.raises(RuntimeError, match="boom"):
        run_edits(model, tok, _requests(), "FLAKY", _hp(), protocol="sequential", progress=False)
    _assert_restored(model, state)


def test_optional_greedy_and_fluency_metrics(tiny):
    model, tok = tiny
    settings = EvalSettings(greedy=True, fluency=True, fluency_max_length=24)
    runs = [
        run_edits(
            model,
            tok,
            _requests(2),
            "FT-L",
            _hp("FT-L"),
            protocol="single",
            settings=settings,
            progress=False,
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]  # deterministic, fluency samples included
    tags = {m.name: m.protocol for m in runs[0][0].post}
    assert tags["reliability_em"] == tags["generalization_em"] == GREEDY_TOKEN_EM
    assert tags["fluency"] == NGRAM_ENTROPY
    assert {m.name for m in runs[0][0].pre} >= {"reliability_em", "fluency"}


def test_batched_fluency_equals_one_request_at_a_time(tiny):
    """Fluency samples all requests in one batched call, yet each value equals sampling its request alone.

    Exact equality: each request's generator is seeded from (fluency_seed, case_id) only, so it draws the
    same random numbers in any batch; batching changes the logits only by float noise, which does not
    change a top-5 multinomial draw here (it could only flip a draw sitting on a CDF boundary).
    """
    model, tok = tiny
    reqs = _requests(4)  # prompts of different lengths: left padding inside each batch
    settings = EvalSettings(fluency=True, fluency_max_length=24, fluency_seed=5, batch_size=3)

    def fluency(requests: list[EditRequest]) -> list[float]:
        values = evaluate_requests(model, tok, requests, pre=None, timing="t", settings=settings)
        return [_values(v)["fluency"] for v in values]

    def sampled_alone(r: EditRequest) -> float:  # what `_fluency` did before batching
        g = sample_generate(
            model, tok, [r.prompt], seed=_fluency_seed(5, r.case_id), max_length=24, stop_at_eos=False
        )[0]
        return ngram_fluency([r.prompt + g.text]).value

    batched = fluency(reqs)
    alone = [fluency([r])[0] for r in reqs]
    before = [sampled_alone(r) for r in reqs]
    assert batched == alone == before
    assert len(set(batched)) > 1  # the requests really got different samples


def test_run_edits_rejects_bad_arguments(tiny):
    model, tok = tiny
    reqs = _requests(2)
    with pytest.raises(ValueError, match="unique"):
        run_edits(model, tok, [reqs[0], reqs[0]], "FT-M", _hp(), protocol="single", progress=False)
    with pytest.raises(TypeError, match="FTHyperParams"):
        run_edits(model, tok, reqs, "FT-M", _NoopHP(), protocol="single", progress=False)
    with pytest.raises(ValueError, match="sequential"):
        run_edits(model, tok, reqs, "FT-M", _hp(), protocol="single", eval_after_each=True, progress=False)
    with pytest.raises(ValueError, match="one request"):
        run_edits(model, tok, reqs, "FT-M", _hp(), protocol="single", batch_size=2, progress=False)
    with pytest.raises(LookupError, match="known methods"):
        run_edits(model, tok, reqs, "ROME?", _hp(), protocol="single", progress=False)


def _rec(method: str, value: float, timing: str = "after_all_T", protocol: str = "p") -> EditRecord:
    return EditRecord(case_id="x", method=method, post=(MetricValue("reliability", value, protocol, timing),))


def test_summarize_means_and_refusals():
    assert summarize([_rec("FT-M", 1.0), _rec("FT-M", 0.5)]) == {"reliability": 0.75}
    mixed = [_rec("FT-M", 1.0), _rec("FT-M", 0.0, timing="after_own_edit")]
    with pytest.raises(ProtocolMismatchError, match="timing"):
        summarize(mixed)
    assert summarize(mixed, timing="after_own_edit") == {"reliability": 0.0}
    with pytest.raises(ProtocolMismatchError, match="methods"):
        summarize([_rec("FT-M", 1.0), _rec("FT-L", 1.0)])
    with pytest.raises(ProtocolMismatchError, match="protocols"):
        summarize([_rec("FT-M", 1.0), _rec("FT-M", 1.0, protocol="q")])


def test_edit_flips_a_learned_fact_on_a_trained_world_lm():
    """End to end on a model that knows its facts: FT-M replaces the answer, greedy decoding follows."""
    model, tok = tiny_world_lm(TINY_TEXTS[:6], model_type="gpt2", size=TINY_SIZE, epochs=60, seed=0)
    prompts = ["Alice Brown was born in", "Boris Kell works as a"]
    assert [g.text for g in greedy_generate(model, tok, prompts, max_new_tokens=1)] == [" Lyon", " poet"]
    req = EditRequest(
        case_id="alice", prompt="Alice Brown was born in", subject="Alice Brown", target_new="Oslo",
        locality={"Relation_Specificity": (Probe("Boris Kell works as a", "poet"),)},
    )  # fmt: skip
    settings = EvalSettings(greedy=True)
    (rec,) = run_edits(model, tok, [req], "FT-M", _hp(), protocol="single", settings=settings, progress=False)
    pre, post = _values(rec.pre), _values(rec.post)
    assert pre["reliability_em"] == 0.0 and post["reliability_em"] == 1.0 and post["reliability"] == 1.0
    assert 0.0 <= post["locality"] <= 1.0
    assert [g.text for g in greedy_generate(model, tok, prompts, max_new_tokens=1)] == [
        " Lyon",
        " poet",
    ]  # restored
