"""Contract suite over every registered method (PEFT's table-driven TEST_CASES idea; house style 4.9).

For each key of `METHODS` and each tiny architecture: the hparams YAML round-trips strictly, an edit
moves the target prediction, `Undo` restores every weight bit-exactly, two runs agree exactly, and
ten sequential edits stack and unwind.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import yaml

from core.config import ConfigError, hparams_from_dict, load_hparams
from core.editors import METHODS, UndoError, UnknownMethodError, chain_undos, get_method
from core.eval.scoring import score_answers
from tests.core.editors.conftest import assert_state_equal, clone_state, hparams_path, make_request

METHOD_NAMES = sorted(METHODS)
IN_CONTEXT = {"ICE", "IKE"}  # weights never change; the context is too long for a random 128-position model


def _probe_logits(model, tok):
    """Logits of a fixed batch: a method "moved" the model iff these change (parameter names may change)."""
    with torch.no_grad():
        return model(**tok(["Alice Brown was born in", "Greta Holm works as a"], return_tensors="pt", padding=True)).logits


def _hp(name: str, arch: str):
    return load_hparams(hparams_path(name, arch), METHODS[name].hparams)


def test_registry_keys_are_method_names():
    assert METHOD_NAMES, "no methods registered"
    for key, method in METHODS.items():
        assert method.name == key
        assert dataclasses.is_dataclass(method.hparams)
        assert method.hparams.__dataclass_params__.frozen


def test_get_method_unknown_lists_known_names():
    with pytest.raises(UnknownMethodError, match="FT-L"):
        get_method("ft-l")


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_hparams_yaml_round_trips(name, arch):
    path = hparams_path(name, arch)
    hp = load_hparams(path, METHODS[name].hparams)
    assert hparams_from_dict(dataclasses.asdict(hp), METHODS[name].hparams) == hp
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.lr = 1.0  # type: ignore[misc]
    raw = yaml.safe_load(path.read_text())
    assert set(raw) == {f.name for f in dataclasses.fields(hp)}  # YAML keys equal field names


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_hparams_unknown_and_missing_keys_fail(name, tmp_path):
    raw = yaml.safe_load(hparams_path(name, "gpt2").read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**raw, "act_margin": 1}))
    with pytest.raises(ConfigError, match="act_margin"):
        load_hparams(bad, METHODS[name].hparams)
    missing = dict(raw)
    missing.pop(next(iter(missing)))
    bad.write_text(yaml.safe_dump(missing))
    with pytest.raises(ConfigError, match="missing"):
        load_hparams(bad, METHODS[name].hparams)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_edit_moves_target_prediction(name, arch, tiny):
    if name in IN_CONTEXT:
        pytest.skip("in-context methods are checked on their own in test_icl.py")
    model, tok = tiny
    req = make_request(0)
    (pre,) = score_answers(model, tok, [req.prompt], [req.target_new])
    assert not torch.equal(pre.argmax_ids, pre.label_ids)
    undo = METHODS[name].edit(model, tok, [req], _hp(name, arch))
    (post,) = score_answers(model, tok, [req.prompt], [req.target_new])
    undo()
    assert torch.equal(post.argmax_ids, post.label_ids)
    assert post.logprobs.sum() > pre.logprobs.sum() + 0.3


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_undo_restores_bit_exactly_once(name, arch, tiny):
    model, tok = tiny
    state = clone_state(model)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    before = _probe_logits(model, tok)
    undo = METHODS[name].edit(model, tok, [make_request(1), make_request(2)], _hp(name, arch))
    assert not torch.equal(_probe_logits(model, tok), before)
    undo()
    assert_state_equal(model, state)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert not model.training
    with pytest.raises(UndoError):
        undo()


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_two_runs_give_equal_weights(name, arch, tiny):
    model, tok = tiny
    twin = copy.deepcopy(model)
    reqs = [make_request(3), make_request(4)]
    hp = _hp(name, arch)
    METHODS[name].edit(model, tok, reqs, hp)
    METHODS[name].edit(twin, tok, reqs, hp)
    assert_state_equal(twin, clone_state(model))


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_ten_sequential_edits_stack_and_unwind(name, arch, tiny):
    if name in IN_CONTEXT:
        pytest.skip("ten facts exceed the tiny model's 128 positions; see test_icl.py for sequential edits")
    model, tok = tiny
    state = clone_state(model)
    hp = _hp(name, arch)
    undos, snapshots, logits = [], [], []
    for i in range(10):
        undos.append(METHODS[name].edit(model, tok, [make_request(i)], hp))
        snapshots.append(clone_state(model))
        logits.append(_probe_logits(model, tok))
    assert not torch.equal(logits[-1], logits[-2])  # the 10th edit moved on
    undos[-1]()
    assert_state_equal(model, snapshots[-2])
    chain_undos(undos[:-1])()
    assert_state_equal(model, state)
