"""MEND meta-trainer: Eq. 4 losses, learning, determinism, early stopping, editor-only checkpoints."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from core.hypernet.checkpoint import load_editor, read_checkpoint
from core.hypernet.examples import MetaExample, as_examples
from core.hypernet.mend import build_editor
from core.hypernet.trainer import kl_on_tokens, meta_losses, train_editor
from tests.core.editors.conftest import assert_state_equal, clone_state
from tests.core.hypernet.conftest import TRAIN, requests, train_config


def test_kl_on_tokens_closed_form():
    torch.manual_seed(0)
    pre, post = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    p, q = F.softmax(pre, -1), F.softmax(post, -1)
    kl = (p * (p.log() - q.log())).sum(-1)
    torch.testing.assert_close(kl_on_tokens(pre, post, mask), (kl * mask).sum() / 4)
    assert kl_on_tokens(pre, pre, mask).abs() < 1e-6


def test_meta_losses_at_init_are_gradient_step_losses(tiny):
    """c_edit * L_edit + c_loc * L_loc, with L_loc = 0 when the editor's step is zero."""
    model, tok = tiny
    cfg = train_config(edit_lr=1e-12)
    editor = build_editor(cfg, model).train()
    ex = as_examples(requests(0, 2))
    out = meta_losses(model, tok, editor, ex, cfg)
    torch.testing.assert_close(out["loss_total"], cfg.c_edit * out["loss_edit"] + cfg.c_loc * out["loss_loc"])
    assert out["loss_loc"].abs() < 1e-6 and out["loc_acc"] == 1.0
    both = meta_losses(
        model, tok, build_editor(cfg, model), ex, dataclasses.replace(cfg, edit_loss_on="both")
    )
    assert both["loss_edit"] != out["loss_edit"]


def test_training_learns_and_leaves_the_model_alone(tiny, tmp_path):
    model, tok = tiny
    state = clone_state(model)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    cfg = train_config(max_steps=24, val_every=8)
    result = train_editor(model, tok, requests(0, 8), requests(8, 10), cfg, out_path=tmp_path / "editor.pt",
                          info={"model": "tiny"})  # fmt: skip
    assert_state_equal(model, state)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    steps = [row["step"] for row in result.history]
    assert steps == [0, 8, 16, 24]
    first = result.history[0]
    assert first["val/edit_acc"] < 0.5 and result.best["edit_acc"] == 1.0  # alphas and MLP learned the step
    assert result.best["loss_total"] < 0.95 * first["val/loss_total"]
    blob = read_checkpoint(tmp_path / "editor.pt")
    assert blob["info"]["step"] == result.best_step and blob["info"]["model"] == "tiny"
    loaded = load_editor(tmp_path / "editor.pt", model, cfg)
    for (n, x), (_, y) in zip(result.editor.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(x, y), n
    assert all(t.u_stats.count > 0 for t in loaded.transforms.values())  # statistics travel with the editor


def test_same_seed_same_editor(tiny):
    model, tok = tiny
    cfg = train_config(max_steps=6, val_every=3, batch_size=2, accumulate=2)
    a = train_editor(model, tok, requests(0, 8), requests(8, 10), cfg)
    b = train_editor(model, tok, requests(0, 8), requests(8, 10), cfg)
    assert a.history == [dict(r, seconds=a.history[i]["seconds"]) for i, r in enumerate(b.history)]
    for (n, x), (_, y) in zip(a.editor.state_dict().items(), b.editor.state_dict().items(), strict=True):
        assert torch.equal(x, y), n
    c = train_editor(model, tok, requests(0, 8), requests(8, 10), dataclasses.replace(cfg, seed=1))
    assert c.history[-1]["val/loss_total"] != a.history[-1]["val/loss_total"]


def test_early_stopping_and_validation_never_trained_on(tiny):
    model, tok = tiny
    cfg = train_config(lr=10.0, lr_lr=10.0, max_steps=40, val_every=2, patience=4, early_stop_key="edit_acc")
    seen: list[str] = []
    val = [MetaExample(case_id="v", prompt="Hugo Marsh was born in", target="Lyon", equiv_prompt="Hugo Marsh was born in",
                       loc_prompt="Erin Page works as a", loc_answer="poet")]  # fmt: skip
    result = train_editor(
        model, tok, requests(0, 4), val, cfg, on_validation=lambda row: seen.append(row["step"])
    )
    assert result.stopped == "early_stop"
    assert seen[-1] - result.best_step >= cfg.patience and seen[-1] < cfg.max_steps
    assert result.best["edit_acc"] == max(row["val/edit_acc"] for row in result.history)


def test_empty_sets_fail(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="need training and validation"):
        train_editor(model, tok, [], requests(0, 1), TRAIN)
