"""|ΔW| summaries and vocabulary projection (KnowEdit §5.1, Figs. 6-7): golden numbers on hand-made
matrices, exact checks on tiny GPT-2 / LLaMA models, and one registered edit end to end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from core.config import load_hparams
from core.editors.base import Undo
from core.editors.registry import METHODS, Method, MethodUnavailableError
from core.editors.rome import ROMEHyperParams
from core.locate.weights import (
    WeightDelta,
    analyse_edits,
    applied_edit,
    chance_hit_at_k,
    column_norms,
    delta_stats,
    diff_weights,
    down_proj_layers,
    effective_columns,
    hit_at_k,
    load_registered,
    summarize_columns,
    summarize_hits,
    target_ranks,
    top_changed_columns,
    top_column_share,
    unembed,
    vocab_hits,
)
from core.models.arch import get_arch, get_module, weight_view
from core.models.tiny import build_tiny_model
from core.types import EditRequest

HPARAMS = Path(__file__).parents[1] / "editors" / "hparams"
REQUEST = EditRequest(
    case_id="c0", prompt="Alice Brown was born in", subject="Alice Brown", target_new="Riga"
)


def test_column_statistics_golden():
    one = torch.zeros(3, 4)
    one[:, 2] = torch.tensor([3.0, 0.0, 4.0])  # a one-column change of norm 5
    assert column_norms(one).tolist() == [0.0, 0.0, 5.0, 0.0]
    assert effective_columns(one) == pytest.approx(1.0)
    assert top_column_share(one, 1) == pytest.approx(1.0)
    assert effective_columns(torch.ones(3, 4)) == pytest.approx(4.0)  # spread evenly over all columns
    assert top_column_share(torch.ones(3, 4), 1) == pytest.approx(0.25)
    two = torch.tensor([[1.0, 0.0, 2.0]])  # squared column norms 1, 0, 4: (5)^2 / (1 + 16)
    assert effective_columns(two) == pytest.approx(25 / 17)
    assert top_column_share(two, 5) == pytest.approx(1.0)  # k above d_in takes every column
    assert effective_columns(torch.zeros(2, 2)) == 0.0 and top_column_share(torch.zeros(2, 2), 1) == 0.0
    stats = delta_stats(one)
    assert stats["fro_norm"] == pytest.approx(5.0) and stats["max_abs"] == pytest.approx(4.0)
    assert stats["top5_share"] == pytest.approx(1.0)


def test_top_changed_columns_pool_modules_and_break_ties():
    a = torch.tensor([[0.0, 2.0, 1.0]])  # column norms 0, 2, 1
    b = torch.tensor([[2.0, 0.0, 3.0]])  # column norms 2, 0, 3
    assert top_changed_columns({"a": a, "b": b}, 3) == [("b", 2), ("a", 1), ("b", 0)]  # tie 2 = 2: a first
    assert top_changed_columns({"b": b, "a": a}, 2) == [("b", 2), ("b", 0)]
    assert top_changed_columns({"a": a}, 5) == [("a", 1), ("a", 2)]  # zero columns never count
    assert top_changed_columns({}, 5) == []


def test_ranks_and_hits_golden():
    logits = torch.tensor([[0.0, 5.0, 1.0, 5.0], [3.0, 0.0, 2.0, 1.0]])
    assert target_ranks(logits, 2).tolist() == [2, 1]  # strictly larger logits only
    assert target_ranks(logits, 1).tolist() == [0, 3]  # a tie with token 3 counts for the target
    ranks = target_ranks(logits, 2)
    assert not hit_at_k(ranks, 1) and hit_at_k(ranks, 2)  # hit when ANY column ranks it in the top k


def test_chance_hit_at_k_golden():
    assert chance_hit_at_k(50, 100, 1) == pytest.approx(0.5)
    assert chance_hit_at_k(50, 100, 2) == pytest.approx(0.75)  # 1 - 0.5^2
    assert chance_hit_at_k(100, 100, 3) == 1.0 and chance_hit_at_k(1, 10, 0) == 0.0
    with pytest.raises(ValueError):
        chance_hit_at_k(0, 10, 5)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_unembed_matches_lm_head_and_linear_part_of_final_norm(arch):
    model, _ = build_tiny_model(arch, seed=0)
    spec = get_arch(model)
    norm = get_module(model, spec.final_norm)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    v = torch.randn(3, spec.hidden_size(model.config), generator=torch.Generator().manual_seed(0))
    head = get_module(model, spec.lm_head).weight.detach()
    torch.testing.assert_close(unembed(model, v, "lm_head"), v @ head.T)
    centred = v - v.mean(-1, keepdim=True) if arch == "gpt2" else v  # LayerNorm centres, RMSNorm does not
    torch.testing.assert_close(unembed(model, v, "final_norm"), (centred * norm.weight.detach()) @ head.T)
    with pytest.raises(ValueError):
        unembed(model, v, "logit_lens")


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_diff_weights_uses_out_in_convention(arch):
    model, _ = build_tiny_model(arch, seed=0)
    name = get_arch(model).mlp_out_name(1)
    snapshot = {n: p.detach().clone() for n, p in model.named_parameters()}
    before = weight_view(model, name).clone()
    with torch.no_grad():
        weight_view(model, name)[3, 5] += 0.25  # (d_out, d_in) index, whatever the storage layout
        get_module(model, get_arch(model).final_norm).weight[0] += 1.0
    wd = diff_weights(model, snapshot)
    assert list(wd.delta) == [name]
    expected = torch.zeros_like(before)
    expected[3, 5] = 0.25
    torch.testing.assert_close(wd.delta[name], expected)
    torch.testing.assert_close(wd.before[name], before)
    assert wd.other == (f"{get_arch(model).final_norm}.weight",)


def test_vocab_hits_golden_on_identity_unembedding():
    model, _ = build_tiny_model("gpt2", seed=0)  # tied embeddings: lm_head.weight is wte.weight
    d, name = model.config.n_embd, get_arch(model).mlp_out_name(0)
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.weight[:d] = torch.eye(d)  # token t < d reads coordinate t of the vector
    d_in = weight_view(model, name).shape[1]
    before, delta = torch.zeros(d, d_in), torch.zeros(d, d_in)
    before[3, 7] = 1.0  # column 7 points at token 3 before the edit
    delta[3, 7], delta[4, 7] = -2.0, 1.0  # ... and at token 4 after it (token 3 drops to -1: last)
    before[6, 9], delta[5, 9] = 1.0, 2.0  # a smaller second column, moved from token 6 to token 5
    wd = WeightDelta({name: before}, {name: delta}, ())
    hits = vocab_hits(model, wd, 3, modules=[name], n_columns=1, ks=(1, 2))
    assert hits == {
        "n_columns": 1.0,
        "before/best_rank": 0.0,
        "before/hit@1": 1.0,
        "before/hit@2": 1.0,
        "after/best_rank": float(len(model.lm_head.weight) - 1),
        "after/hit@1": 0.0,
        "after/hit@2": 0.0,
    }
    hits5 = vocab_hits(model, wd, 5, modules=[name], n_columns=5, ks=(1,))
    assert hits5["n_columns"] == 2.0 and hits5["after/hit@1"] == 1.0 and hits5["before/best_rank"] > 0
    assert vocab_hits(model, wd, 3, modules=["other.module"]) == {}


def _fake_method(edit) -> Method:
    return Method(name="FAKE", hparams=ROMEHyperParams, edit=edit)


def test_applied_edit_restores_and_checks_the_restore(monkeypatch):
    model, tok = build_tiny_model("gpt2", seed=0)
    name = get_arch(model).mlp_out_name(0)

    def edit(model, tok, requests, hp):  # changes W but "forgets" to undo
        with torch.no_grad():
            weight_view(model, name)[0, 0] += 1.0
        return Undo(lambda: None, "no-op")

    monkeypatch.setitem(METHODS, "FAKE", _fake_method(edit))
    with pytest.raises(RuntimeError, match="undo left parameters changed"):
        with applied_edit(model, tok, [REQUEST], "FAKE", None) as wd:
            assert float(wd.delta[name][0, 0]) == 1.0

    def grow(model, tok, requests, hp):  # adds a parameter: not an in-place weight edit
        model.extra = torch.nn.Parameter(torch.zeros(1))
        return Undo(lambda: delattr(model, "extra"), "adapter")

    monkeypatch.setitem(METHODS, "FAKE", _fake_method(grow))
    fresh, _ = build_tiny_model("gpt2", seed=0)
    with pytest.raises(ValueError, match="in-place weight edits"):
        with applied_edit(fresh, tok, [REQUEST], "FAKE", None):
            pass


def test_rome_edit_is_rank_one_in_one_down_projection_and_restored():
    model, tok = build_tiny_model("gpt2", seed=0)
    hp = load_hparams(HPARAMS / "ROME" / "tiny-gpt2.yaml", ROMEHyperParams)
    state = {n: p.detach().clone() for n, p in model.named_parameters()}
    with applied_edit(model, tok, [REQUEST], "ROME", hp) as wd:
        assert list(wd.delta) == [get_arch(model).mlp_out_name(hp.layers[0])] and wd.other == ()
        dw = next(iter(wd.delta.values()))
        assert int(torch.linalg.matrix_rank(dw.double(), rtol=1e-6)) == 1  # ROME Eq. 2: (v* - Wk*) u^T
    assert all(torch.equal(p, state[n]) for n, p in model.named_parameters())


def test_analyse_edits_rows_and_summaries():
    model, tok = build_tiny_model("gpt2", seed=0)
    methods = load_registered(["ROME", "FT-L", "NOPE"], str(HPARAMS / "{method}" / "tiny-gpt2.yaml"))
    assert list(methods) == ["ROME", "FT-L"]  # unregistered names are skipped
    requests = [
        REQUEST,
        EditRequest(case_id="c1", prompt="Hugo Marsh works as a", subject="Hugo Marsh", target_new="pilot"),
    ]
    res = analyse_edits(model, tok, requests, methods, ks=(1, 50), keep_deltas=1)
    assert len(res.case_rows) == 2 * 2 * 2  # cases x methods x projections
    assert {(r["method"], r["layer"]) for r in res.module_rows} == {("ROME", 0), ("FT-L", 0)}
    assert set(res.deltas) == {("ROME", "c0"), ("FT-L", "c0")}
    assert all(r["success"] in (0.0, 1.0) and r["n_columns"] == 5.0 for r in res.case_rows)
    assert all(
        r["other_params_changed"] == (1 if r["method"] == "FT-L" else 0) for r in res.case_rows
    )  # c_proj bias
    table = summarize_columns(res.module_rows)
    assert list(table["n_cases"]) == [2, 2] and set(table["layer"]) == {0}
    assert set(down_proj_layers(model).values()) == {0, 1}


def test_load_registered_skips_or_raises_on_missing_files(tmp_path):
    ft = (HPARAMS / "FT-L" / "tiny-gpt2.yaml").read_text()
    mend = HPARAMS / "MEND" / "tiny-gpt2.yaml"
    (tmp_path / "FT-L.yaml").write_text(ft)
    (tmp_path / "MEND.yaml").write_text(
        re.sub(r"(?m)^archive:.*$", "archive: no/such/editor.pt", mend.read_text())
    )
    template = str(tmp_path / "{method}.yaml")
    assert list(load_registered(["MEND", "FT-L", "ROME"], template)) == [
        "FT-L"
    ]  # no checkpoint; no ROME file
    with pytest.raises(MethodUnavailableError, match="no/such/editor.pt"):
        load_registered(["MEND"], template, strict=True)
    with pytest.raises(MethodUnavailableError, match="not registered"):
        load_registered(["NOPE"], template, strict=True)


def test_summarize_hits_keeps_cases_every_method_got_right():
    rows = [
        {
            "method": "A",
            "case_id": "x",
            "projection": "lm_head",
            "success": 1.0,
            "before/hit@10": 0.0,
            "after/hit@10": 1.0,
        },
        {
            "method": "B",
            "case_id": "x",
            "projection": "lm_head",
            "success": 1.0,
            "before/hit@10": 1.0,
            "after/hit@10": 1.0,
        },
        {
            "method": "A",
            "case_id": "y",
            "projection": "lm_head",
            "success": 1.0,
            "before/hit@10": 1.0,
            "after/hit@10": 1.0,
        },
        {
            "method": "B",
            "case_id": "y",
            "projection": "lm_head",
            "success": 0.0,
            "before/hit@10": 0.0,
            "after/hit@10": 0.0,
        },
    ]
    common = summarize_hits(rows, ks=(10,)).set_index("method")
    assert common.loc["A", "n_cases"] == 1 and common.loc["A", "after/hit@10"] == 100.0
    assert common.loc["A", "before/hit@10"] == 0.0 and common.loc["B", "before/hit@10"] == 100.0
    assert common.loc["B", "success_rate"] == 50.0
    own = summarize_hits(rows, ks=(10,), common_success=False).set_index("method")
    assert own.loc["A", "n_cases"] == 2 and own.loc["A", "before/hit@10"] == 50.0
