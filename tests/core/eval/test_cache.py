"""The pre-edit cache: a hit equals recomputation exactly, and every input that matters changes the key."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch

from core.eval import cache
from core.eval.cache import cache_path, load_or_compute_pre_edit, pre_edit_key, weights_fingerprint
from core.eval.evaluate import EvalSettings, PreEditOutputs, compute_pre_edit
from core.models.tiny import build_tiny_model
from core.types import EditRequest, Probe

SETTINGS = EvalSettings(greedy=True, fluency=True, fluency_max_length=20)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; with two, a busy second core stalls every op."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=["gpt2", "llama"])
def tiny(request):
    return build_tiny_model(request.param, seed=0)


def _requests() -> list[EditRequest]:
    loc = {
        "NQ": (Probe("Greta Holm works as a", "painter"), Probe("nq question: who is Hugo Marsh?", "a judge"))
    }
    return [
        EditRequest(case_id="a", prompt="Alice Brown was born in", subject="Alice Brown", target_new="Riga",
                    rephrases=("Alice Brown's birthplace is",), locality=loc),
        EditRequest(case_id="b", prompt="Boris Kell works as a", subject="Boris Kell", target_new="pilot",
                    portability={"Logical": (Probe("Boris Kell flies", "planes"),)}, locality=loc),
    ]  # fmt: skip


def test_hit_equals_recompute_exactly(tiny, tmp_path, monkeypatch):
    model, tok = tiny
    reqs = _requests()
    first = load_or_compute_pre_edit(model, tok, reqs, SETTINGS, tmp_path)
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [
        cache_path(tmp_path, pre_edit_key(model, tok, reqs, SETTINGS)["key"]).name
    ]

    def no_compute(*args, **kwargs):
        raise AssertionError("cache miss")

    monkeypatch.setattr(cache, "compute_pre_edit", no_compute)
    hit = load_or_compute_pre_edit(model, tok, reqs, SETTINGS, tmp_path)
    assert hit == first == compute_pre_edit(model, tok, reqs, SETTINGS)
    assert isinstance(hit.locality_ids["a"]["NQ"][1][0], int)
    assert {m.name for m in hit.metrics["b"]} >= {"reliability", "portability", "reliability_em", "fluency"}


def test_json_round_trip():
    pre = PreEditOutputs(locality_ids={"a": {"k": ((1, 2), (3,))}}, metrics={})
    assert PreEditOutputs.from_json(json.loads(json.dumps(pre.to_json()))) == pre


def test_every_input_changes_the_key(tiny):
    model, tok = tiny
    reqs = _requests()
    base = pre_edit_key(model, tok, reqs, SETTINGS)["key"]
    assert pre_edit_key(copy.deepcopy(model), tok, reqs, SETTINGS)["key"] == base
    edited = copy.deepcopy(model)
    with torch.no_grad():
        next(edited.parameters()).view(-1)[0] += 1e-6
    changed_req = dataclasses.replace(reqs[0], locality={"NQ": (Probe("Greta Holm works as a", "poet"),)})
    other_tok = copy.deepcopy(tok)
    other_tok.padding_side = "right" if tok.padding_side == "left" else "left"
    keys = [
        pre_edit_key(edited, tok, reqs, SETTINGS)["key"],
        pre_edit_key(model, other_tok, reqs, SETTINGS)["key"],
        pre_edit_key(model, tok, [changed_req, reqs[1]], SETTINGS)["key"],
        pre_edit_key(model, tok, reqs[::-1], SETTINGS)["key"],
        pre_edit_key(model, tok, reqs, dataclasses.replace(SETTINGS, fluency_seed=1))["key"],
        pre_edit_key(model, tok, reqs, dataclasses.replace(SETTINGS, batch_size=1))["key"],
    ]
    assert base not in keys and len(set(keys)) == len(keys)


def test_weights_fingerprint_sees_dtype(tiny):
    model, _ = tiny
    assert weights_fingerprint(model) != weights_fingerprint(copy.deepcopy(model).to(torch.float64))


def test_stale_entry_is_recomputed_and_replaced(tiny, tmp_path):
    model, tok = tiny
    reqs = _requests()
    key = pre_edit_key(model, tok, reqs, SETTINGS)
    path = cache_path(tmp_path, key["key"])
    path.write_text(json.dumps({"key": {"key": "other"}, "outputs": PreEditOutputs().to_json()}))
    pre = load_or_compute_pre_edit(model, tok, reqs, SETTINGS, tmp_path)
    assert pre == compute_pre_edit(model, tok, reqs, SETTINGS)
    assert json.loads(path.read_text())["key"] == key
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # atomic write left no temporary file


def test_no_cache_dir_writes_nothing(tiny, tmp_path, monkeypatch):
    model, tok = tiny
    monkeypatch.chdir(tmp_path)
    load_or_compute_pre_edit(model, tok, _requests(), SETTINGS, None)
    assert list(tmp_path.iterdir()) == []
