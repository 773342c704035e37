"""Editor-only checkpoints: exact round trip, atomic writes, and clear refusals for the wrong model or config."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.editors.mend import edit_factors
from core.hypernet.checkpoint import CheckpointMismatchError, load_editor, read_checkpoint, save_editor
from core.hypernet.mend import build_editor
from core.models.tiny import build_tiny_model
from tests.core.hypernet.conftest import NET


def _trained_looking(model):
    """An editor with non-trivial parameters and statistics."""
    editor = build_editor(NET, model, seed=3).train()
    with torch.no_grad():
        for p in editor.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return editor


def test_round_trip_is_exact_and_holds_no_base_weights(tiny, tmp_path):
    model, tok = tiny
    editor = _trained_looking(model)
    edit_factors(model, editor, tok, ["Alice Brown was born in"], ["Riga"])  # fills statistics
    editor.new_weights(
        dict(model.named_parameters()), edit_factors(model, editor, tok, ["Hugo Marsh was born in"], ["Oslo"])
    )
    path = save_editor(editor, tmp_path / "sub" / "editor.pt", {"step": 7})
    assert [p.name for p in path.parent.iterdir()] == ["editor.pt"]  # no temporary file left
    blob = read_checkpoint(path)
    assert blob["info"] == {"step": 7}
    assert not any(k.startswith(("transformer.", "model.", "lm_head")) for k in blob["state_dict"])
    loaded = load_editor(path, model, NET)
    assert not loaded.training
    for (n, x), (m, y) in zip(editor.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert n == m and torch.equal(x, y), n
    factors = edit_factors(model, loaded, tok, ["Greta Holm works as a"], ["pilot"])
    current = dict(model.named_parameters())
    editor.eval()
    a, b = editor.new_weights(current, factors), loaded.new_weights(current, factors)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_wrong_model_is_refused_naming_the_weights(tmp_path):
    gpt2, _ = build_tiny_model("gpt2")
    llama, _ = build_tiny_model("llama")
    path = save_editor(build_editor(NET, gpt2), tmp_path / "editor.pt")
    with pytest.raises(
        CheckpointMismatchError, match=r"only in checkpoint \['transformer\.h\.0\.mlp\.c_fc\.weight'"
    ):
        load_editor(path, llama)


def test_other_width_is_refused(tmp_path):
    from core.models.configs import ModelSize

    small, _ = build_tiny_model("gpt2")
    wide, _ = build_tiny_model("gpt2", size=ModelSize(n_layers=2, hidden=64, n_heads=4, max_positions=128))
    path = save_editor(build_editor(NET, small), tmp_path / "editor.pt")
    with pytest.raises(CheckpointMismatchError, match="differ for"):
        load_editor(path, wide)


def test_config_mismatch_and_bad_files_are_refused(tmp_path):
    model, _ = build_tiny_model("gpt2")
    path = save_editor(build_editor(NET, model), tmp_path / "editor.pt")
    with pytest.raises(CheckpointMismatchError, match="rank: hparams 8 vs checkpoint 16"):
        load_editor(path, model, dataclasses.replace(NET, rank=8))
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointMismatchError, match="not a MEND editor checkpoint"):
        load_editor(tmp_path / "other.pt", model)
    with pytest.raises(FileNotFoundError, match="core.hypernet.train"):
        load_editor(tmp_path / "missing.pt", model)
