"""ROME: the closed-form rank-one update (Eq. 2) for Linear and Conv1D storage, the edit, the cache, errors."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from core.config import load_hparams
from core.editors import rome_parts
from core.editors.partial import ScoredBatch, freeze_prefix, pad_rows, scored_logprobs
from core.editors.rome import ROMEHyperParams, apply_rome, rome_update
from core.editors.rome_parts import covariance_solver, layer_covariance, optimise_delta
from core.eval.scoring import score_answers
from core.hooks import add_at_positions, capture_input, skip_below
from core.models.arch import as_out_in
from core.models.inputs import position_ids_from_mask
from core.models.loading import load_model
from core.models.tiny import build_tiny_model, save_tiny_model
from tests.core.editors.conftest import assert_state_equal, clone_state, hparams_path, make_request


def _hp(arch: str, **changes) -> ROMEHyperParams:
    return dataclasses.replace(load_hparams(hparams_path("ROME", arch), ROMEHyperParams), **changes)


@pytest.mark.parametrize("conv1d", [False, True])
def test_update_maps_key_to_value(conv1d):
    torch.manual_seed(0)
    d_in, d_out = 12, 7
    module = Conv1D(d_out, d_in) if conv1d else nn.Linear(d_in, d_out)
    nn.init.normal_(module.weight)
    nn.init.normal_(module.bias)
    x = torch.randn(50, d_in, dtype=torch.float64)
    cov = x.T @ x / 50
    k, v = torch.randn(d_in, dtype=torch.float64), torch.randn(d_out, dtype=torch.float64)
    w = as_out_in(module.weight.data, conv1d)
    u = torch.linalg.solve(cov, k)
    with torch.no_grad():
        w.add_(rome_update(w.double(), module.bias.double(), k, v, u).float())
        out = module(k.float()[None])[0]
    assert torch.allclose(out.double(), v, atol=1e-4)


def test_identity_covariance_gives_plain_rank_one():
    torch.manual_seed(1)
    w, b = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    k, v = torch.randn(8, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    u = torch.linalg.solve(torch.eye(8, dtype=torch.float64), k)
    plain = torch.outer(v - w @ k - b, k) / (k @ k)
    assert torch.allclose(rome_update(w, b, k, v, u), plain)
    assert torch.linalg.matrix_rank(plain) == 1


@pytest.mark.parametrize("mom2", [True, False])
def test_edit_moves_prediction_and_undo_is_exact(arch, tiny, mom2):
    model, tok = tiny
    state = clone_state(model)
    req = make_request(5)
    (pre,) = score_answers(model, tok, [req.prompt], [req.target_new])
    undo = apply_rome(model, tok, [req], _hp(arch, mom2_adjustment=mom2))
    (post,) = score_answers(model, tok, [req.prompt], [req.target_new])
    changed = [n for n, t in model.named_parameters() if not torch.equal(t, state[n])]
    assert len(changed) == 1 and "mlp" in changed[0]
    assert post.logprobs.sum() > pre.logprobs.sum() + 0.3
    undo()
    assert_state_equal(model, state)


def test_covariance_cached_under_stats_dir(tmp_path):
    model, tok = load_model(save_tiny_model("gpt2", tmp_path / "tiny-gpt2"))
    hp = _hp("gpt2", stats_dir=str(tmp_path / "stats"))
    apply_rome(model, tok, [make_request(0)], hp)()
    (path,) = (tmp_path / "stats").rglob("*.pt")
    assert path.relative_to(tmp_path / "stats").parts[1:] == (
        "transformer.h.0.mlp.c_proj",
        "tiny-n100-len256-float32.pt",
    )
    stamp = path.stat().st_mtime_ns
    apply_rome(model, tok, [make_request(1)], hp)()
    assert path.stat().st_mtime_ns == stamp  # loaded, not recomputed


def test_covariance_solver_is_exact_and_factorises_a_cached_file_once(tmp_path, monkeypatch):
    model, tok = load_model(save_tiny_model("gpt2", tmp_path / "tiny-gpt2"))
    name = "transformer.h.0.mlp.c_proj"
    k = torch.randn(model.config.n_inner or 4 * model.config.n_embd, dtype=torch.float64)
    calls = []
    real = torch.linalg.lu_factor
    monkeypatch.setattr(torch.linalg, "lu_factor", lambda a: calls.append(1) or real(a))
    for ridge in (0.0, 0.1):
        hp = _hp("gpt2", stats_dir=str(tmp_path / "stats"), mom2_ridge=ridge)
        expected = torch.linalg.solve(layer_covariance(model, tok, name, hp), k)
        n = len(calls)
        for _ in range(3):
            assert torch.equal(covariance_solver(model, tok, name, hp)(k), expected)  # LU + solves == solve
        ks = torch.stack([k, 2 * k, -k], dim=1)  # (d_in, n): MEMIT's keys, one solve for all columns
        torch.testing.assert_close(
            covariance_solver(model, tok, name, hp)(ks), torch.stack([expected, 2 * expected, -expected], 1)
        )
        assert len(calls) == n + 1  # one factorisation for three calls
    (path,) = (tmp_path / "stats").rglob("*.pt")
    hp = _hp("gpt2", stats_dir=str(tmp_path / "stats"))
    doubled = 2 * layer_covariance(model, tok, name, hp)
    mtime = path.stat().st_mtime_ns
    torch.save(2 * torch.load(path), path)  # a rewritten file is a new key
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))
    torch.testing.assert_close(covariance_solver(model, tok, name, hp)(k), torch.linalg.solve(doubled, k))
    in_memory = _hp("gpt2", stats_dir=None)
    n = len(calls)
    covariance_solver(model, tok, name, in_memory)
    covariance_solver(model, tok, name, in_memory)
    assert len(calls) == n + 2  # computed in memory: no file to key a cache by


def test_subject_not_in_prompt_is_a_clear_error(tiny):
    model, tok = tiny
    state = clone_state(model)
    req = dataclasses.replace(make_request(0), subject="Nobody Here")
    with pytest.raises(ValueError, match="does not occur in prompt"):
        apply_rome(model, tok, [req], _hp("gpt2", fact_token="subject_last"))
    assert_state_equal(model, state)


def test_hparams_rules(tiny):
    with pytest.raises(ValueError, match="exactly one layer"):
        _hp("gpt2", layers=(0, 1))
    with pytest.raises(ValueError, match="v_loss_layer"):
        apply_rome(*tiny, [make_request(0)], _hp("gpt2", v_loss_layer=0))


def test_skip_below_reproduces_the_full_forward(arch, tiny):
    model, tok = tiny
    blocks = model.base_model.h if arch == "gpt2" else model.base_model.layers
    enc = tok(["Alice Brown was born in", "Oslo"], return_tensors="pt", padding=True)
    enc["position_ids"] = position_ids_from_mask(enc["attention_mask"])
    with torch.no_grad(), capture_input(blocks[1]) as box:
        full = model(**enc).logits
    with torch.no_grad(), skip_below(blocks, 1, box.value):
        skipped = model(**enc).logits
    assert torch.allclose(full, skipped, atol=1e-6)
    assert "forward" not in vars(blocks[0])  # the passthrough is removed on exit


@pytest.mark.parametrize("side", ["left", "right"])
def test_frozen_prefix_pass_equals_the_full_pass(arch, tiny, side):
    """Feeding only the columns from the first edited one on, with the earlier columns' keys/values kept,
    gives the full pass's log-probs at every scored position, also with a delta added at those columns,
    and the kept prefix is unchanged by a pass (so every optimisation step sees the same one)."""
    model, tok = tiny
    tok.padding_side = side
    rows = [
        tok(t)["input_ids"]
        for t in ("Alice Brown was born in Riga", "The city where Clara Voss lives is Oslo")
    ]
    ids, mask, shifts = pad_rows(rows, tok, "cpu")
    scored = [(shifts[0] + len(rows[0]) - 2, shifts[1] + 5, shifts[1] + len(rows[1]) - 2)]
    batch = ScoredBatch(
        ids, mask, rows=torch.tensor([0, 1, 1]), cols=torch.tensor(scored[0]), pair_pos=torch.arange(3),
        labels=torch.tensor([rows[0][-1], 7, rows[1][-1]]), weights=torch.ones(3),
    )  # fmt: skip
    look_rows, look_cols = torch.tensor([0, 1]), torch.tensor([shifts[0] + 2, shifts[1] + 4])
    start = int(look_cols.min())
    blocks = model.base_model.h if arch == "gpt2" else model.base_model.layers
    module = blocks[1].mlp
    with torch.no_grad(), capture_input(blocks[1]) as box:
        model.base_model(input_ids=ids, attention_mask=mask, position_ids=batch.position_ids)
    prefix = freeze_prefix(model, batch, start)
    kept = [kv[0].clone() for kv in prefix.saved if kv is not None]
    torch.manual_seed(0)
    delta = torch.randn(model.config.hidden_size)
    with torch.no_grad():
        with add_at_positions(module, delta, look_rows, look_cols):
            full = scored_logprobs(model, batch, 1, box.value)
        for _ in range(2):
            with add_at_positions(module, delta, look_rows, look_cols - start):
                fast = scored_logprobs(model, batch, 1, box.value, prefix)
            torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
    assert all(
        torch.equal(a, kv[0])
        for a, kv in zip(kept, [kv for kv in prefix.saved if kv is not None], strict=True)
    )
    assert prefix.rewind().get_seq_length() == start
    with pytest.raises(ValueError, match="prefix end"):
        freeze_prefix(model, batch, int(batch.cols.min()) + 1)


def test_v_star_with_a_frozen_prefix_matches_the_full_recomputation(tiny, monkeypatch):
    """optimise_delta's result does not depend on whether the prefix is recomputed each step."""
    model, tok = tiny
    req = make_request(2)  # "The city where Clara Voss lives is": the subject starts mid-prompt
    settings = _hp("gpt2").delta_settings()
    prefixes = ["", "Some longer context here. "]
    name = "transformer.h.1.mlp.c_proj" if hasattr(model.base_model, "h") else "model.layers.1.mlp.down_proj"
    starts = []
    real = rome_parts.freeze_prefix
    monkeypatch.setattr(
        rome_parts, "freeze_prefix", lambda m, b, start: starts.append(start) or real(m, b, start)
    )
    fast, v0 = optimise_delta(model, tok, req, prefixes, layer=1, edit_module=name, settings=settings)
    assert starts and starts[0] > 0  # the fast run did freeze a prefix
    monkeypatch.setattr(rome_parts, "freeze_prefix", _full_width_prefix)
    slow, v1 = optimise_delta(model, tok, req, prefixes, layer=1, edit_module=name, settings=settings)
    assert torch.equal(v0, v1)
    torch.testing.assert_close(fast, slow, rtol=1e-3, atol=1e-4 * float(slow.norm()))


def _full_width_prefix(model, batch, start):
    return None  # as if the first lookup column were 0: every column is recomputed each step


def test_context_prefixes_are_sampled_once_per_model(tiny, arch, monkeypatch):
    model, tok = tiny
    other, _ = build_tiny_model(arch, seed=0)
    calls = []
    real = rome_parts.sample_generate
    monkeypatch.setattr(rome_parts, "sample_generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = rome_parts.context_prefixes(model, tok, 3, 4, seed=7)
    assert len(first) == 4 and first[0] == "" and len(calls) == 1
    assert rome_parts.context_prefixes(model, tok, 3, 4, seed=7) == first and len(calls) == 1
    rome_parts.context_prefixes(model, tok, 3, 4, seed=8)  # another key samples again
    rome_parts.context_prefixes(other, tok, 3, 4, seed=7)  # so does another model object
    assert len(calls) == 3
    assert rome_parts.context_prefixes(model, tok, 0, 4) == [""] and len(calls) == 3
