"""MEND edit (core.editors.mend): checkpoint loading, scope of the edit, batch edits, undo, registry entry."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from core.config import load_hparams
from core.editors import METHODS
from core.editors.mend import MENDHyperParams, apply_mend, edit_factors, load_mend_editor
from core.eval.scoring import score_answers
from core.hypernet.checkpoint import CheckpointMismatchError, save_editor
from core.hypernet.config import MENDTrainConfig, net_config
from core.hypernet.mend import build_editor
from core.hypernet.trainer import train_editor
from tests.core.editors.conftest import assert_state_equal, clone_state, hparams_path, make_request
from tests.core.hypernet.conftest import train_config


def _hp(arch: str, **changes) -> MENDHyperParams:
    return dataclasses.replace(load_hparams(hparams_path("MEND", arch), MENDHyperParams), **changes)


def test_registry_entry_has_a_trainer():
    method = METHODS["MEND"]
    assert method.hparams is MENDHyperParams and method.edit is apply_mend and method.train is not None


def test_edit_changes_only_the_edited_weights_by_the_editor_step(tiny, arch):
    model, tok = tiny
    hp = _hp(arch)
    before = clone_state(model)
    editor = load_mend_editor(model, hp)
    names = {w.param for w in editor.weights}
    req = make_request(0)
    factors = edit_factors(model, editor, tok, [req.prompt], [req.target_new])
    expected = editor.new_weights(dict(model.named_parameters()), factors)
    undo = apply_mend(model, tok, [req], hp)
    after = clone_state(model)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed == names
    for n in names:
        torch.testing.assert_close(after[n], expected[n], rtol=0, atol=0)
    undo()
    assert_state_equal(model, before)


def test_trained_archive_edits_and_batch_edits(tiny, arch, tmp_path):
    model, tok = tiny
    cfg = train_config(
        max_steps=8, val_every=4, batch_size=2, layers=_hp(arch).layers, rank=_hp(arch).rank, edit_lr=1e-3
    )
    reqs = [make_request(i) for i in range(10)]
    train_editor(model, tok, reqs[:8], reqs[8:], cfg, out_path=tmp_path / "editor.pt")
    hp = _hp(arch, archive=str(tmp_path / "editor.pt"), edit_lr=1e-3)
    batch = [make_request(0), make_request(3)]
    pre = score_answers(model, tok, [r.prompt for r in batch], [r.target_new for r in batch])
    undo = apply_mend(model, tok, batch, hp)
    post = score_answers(model, tok, [r.prompt for r in batch], [r.target_new for r in batch])
    undo()
    assert sum(b.logprobs.sum() for b in post) > sum(a.logprobs.sum() for a in pre) + 0.1  # one batch edit
    for r in batch:
        (a,) = score_answers(model, tok, [r.prompt], [r.target_new])
        undo = apply_mend(model, tok, [r], hp)
        (b,) = score_answers(model, tok, [r.prompt], [r.target_new])
        undo()
        assert b.logprobs.sum() > a.logprobs.sum() + 0.1


def test_archive_must_match_hparams_and_model(tmp_path):
    from core.models.tiny import build_tiny_model

    gpt2, tok = build_tiny_model("gpt2")
    llama, _ = build_tiny_model("llama")
    hp = _hp("gpt2")
    path = save_editor(build_editor(hp, gpt2), tmp_path / "editor.pt")
    state = clone_state(llama)
    with pytest.raises(CheckpointMismatchError, match="trained for other weights"):
        apply_mend(llama, tok, [make_request(0)], _hp("llama", archive=str(path), layers=hp.layers))
    assert_state_equal(llama, state)
    with pytest.raises(CheckpointMismatchError, match="edit_lr"):
        apply_mend(gpt2, tok, [make_request(0)], dataclasses.replace(hp, archive=str(path), edit_lr=2.0))


def test_hparams_validation():
    hp = _hp("gpt2")
    with pytest.raises(ValueError, match="archive"):
        dataclasses.replace(hp, archive="")
    with pytest.raises(ValueError, match="layers repeat"):
        dataclasses.replace(hp, layers=(0, 0))
    with pytest.raises(ValueError, match="layer slot"):
        dataclasses.replace(hp, inner_modules=("transformer.h.mlp",))
    with pytest.raises(ValueError, match="edit_lr"):
        dataclasses.replace(hp, edit_lr=0.0)
    with pytest.raises(ValueError, match="no requests"):
        apply_mend(None, None, [], hp)  # type: ignore[arg-type]


KNOWEDIT_HPARAMS = Path(__file__).resolve().parents[3] / "papers" / "knowedit" / "hparams"


@pytest.mark.parametrize(
    "model", ["world-gpt2", "world-llama", "world-gpt2-smoke", "world-llama-smoke", "llama-2-7b-chat"]
)
def test_knowedit_hparams_match_their_training_configs(model):
    hp = load_hparams(KNOWEDIT_HPARAMS / "MEND" / f"{model}.yaml", MENDHyperParams)
    cfg = load_hparams(KNOWEDIT_HPARAMS / "TRAINING" / "MEND" / f"{model}.yaml", MENDTrainConfig)
    assert net_config(hp) == net_config(cfg)  # else the trained checkpoint is refused at load
    assert hp.archive == f"../../data/editors/knowedit/MEND/{model}/editor.pt"
