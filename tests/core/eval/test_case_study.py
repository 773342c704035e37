"""Case study (KnowEdit Table 7): method resolution, generations before/after each edit with restore,
seeded samples, and the Markdown table."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from core.editors.ft import FTHyperParams, apply_ft_m
from core.editors.registry import METHODS
from core.eval.case_study import (
    PRE_EDIT,
    case_study,
    case_study_markdown,
    editable_methods,
    edited_generations,
    method_hparams,
)
from core.eval.scoring import greedy_generate
from core.models.tiny import build_tiny_model
from core.types import EditRequest

EDITOR_HPARAMS = Path(__file__).parents[1] / "editors" / "hparams"
REQ = EditRequest(
    case_id="c0",
    prompt="Alice Brown was born in",
    subject="Alice Brown",
    target_new="Riga",
    ground_truth="Lyon",
)


def _state(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _hparams_dir(tmp_path: Path) -> Path:
    for m in ("FT-M", "FT-L"):
        (tmp_path / m).mkdir()
        shutil.copy(EDITOR_HPARAMS / m / "tiny-gpt2.yaml", tmp_path / m / "tiny.yaml")
    return tmp_path


def test_method_hparams_keeps_order_and_skips(tmp_path, caplog):
    names = ["NOT-A-METHOD", "FT-M", "ROME", "FT-L"]
    hps = method_hparams(names, _hparams_dir(tmp_path), "tiny", strict=False)
    assert list(hps) == ["FT-M", "FT-L"]  # ROME is registered but has no tiny.yaml here
    assert isinstance(hps["FT-M"], FTHyperParams) and hps["FT-M"].objective == "target_new"
    assert "NOT-A-METHOD" in caplog.text and "ROME" in caplog.text
    with pytest.raises(LookupError, match="not registered"):
        method_hparams(names, tmp_path, "tiny")
    with pytest.raises(LookupError, match="no hparams file"):
        method_hparams(["FT-M", "ROME"], tmp_path, "tiny")


def test_editable_methods_drop_missing_artefacts(tmp_path, monkeypatch, caplog):
    model, tok = build_tiny_model("gpt2", seed=0)
    state = _state(model)
    hps = method_hparams(["FT-M", "FT-L"], _hparams_dir(tmp_path), "tiny")

    def untrained(*_args):
        raise FileNotFoundError("checkpoint x.pt does not exist")

    monkeypatch.setitem(METHODS, "FT-L", dataclasses.replace(METHODS["FT-L"], edit=untrained))
    assert list(editable_methods(model, tok, REQ, hps)) == ["FT-M"] and "x.pt" in caplog.text
    assert all(torch.equal(p, state[n]) for n, p in model.named_parameters())

    def broken(*_args):
        raise RuntimeError("a real bug")

    monkeypatch.setitem(METHODS, "FT-L", dataclasses.replace(METHODS["FT-L"], edit=broken))
    with pytest.raises(RuntimeError, match="real bug"):
        editable_methods(model, tok, REQ, hps)


def test_case_study_rows_and_restore(tmp_path):
    torch.set_num_threads(1)
    model, tok = build_tiny_model("gpt2", seed=0)
    state = _state(model)
    hps = method_hparams(["FT-M", "FT-L"], _hparams_dir(tmp_path), "tiny")
    rows = case_study(model, tok, REQ, hps, max_new_tokens=4, sample_seed=3, sample_max_length=16)
    assert [r["method"] for r in rows] == [PRE_EDIT, "FT-M", "FT-L"]
    (pre,) = greedy_generate(model, tok, [REQ.prompt], max_new_tokens=4)
    assert rows[0]["greedy"] == pre.text and rows[0]["sampled"]
    assert rows[1]["greedy"].strip().startswith("Riga") and not pre.text.strip().startswith("Riga")
    assert all(torch.equal(p, state[n]) for n, p in model.named_parameters())
    again = case_study(model, tok, REQ, hps, max_new_tokens=4, sample_seed=3, sample_max_length=16)
    assert again == rows  # deterministic, no leaked state
    assert all(r["sampled"] is None for r in case_study(model, tok, REQ, hps, max_new_tokens=2))


def test_edited_generations_equal_manual_edit(tmp_path):
    model, tok = build_tiny_model("llama", seed=0)
    hp = method_hparams(["FT-M"], _hparams_dir(tmp_path), "tiny")["FT-M"]
    other = EditRequest(
        case_id="c1", prompt="Boris Kell works as a", subject="Boris Kell", target_new="Porto"
    )
    out = edited_generations(model, tok, [REQ, other], "FT-M", hp, max_new_tokens=[3, 5])
    undo = apply_ft_m(model, tok, [other], hp)
    (manual,) = greedy_generate(model, tok, [other.prompt], max_new_tokens=5)
    undo()
    assert out[1][0] == manual and out[1][1] is None
    assert len(out[0][0].token_ids) <= 3


def test_markdown_golden():
    rows = [
        {"method": PRE_EDIT, "greedy": " Lyon.\nHe", "sampled": None},
        {"method": "FT-M", "greedy": " Riga | Riga", "sampled": None},
    ]
    assert case_study_markdown(REQ, rows) == (
        "**Edit** (c0): *Alice Brown was born in* Lyon -> **Riga**\n\n"
        "| Method | Greedy continuation |\n|---|---|\n"
        "| pre-edit | Lyon. He |\n| FT-M | Riga \\| Riga |\n"
    )
    sampled = case_study_markdown(REQ, [{**rows[0], "sampled": "x"}])
    assert "| Sampled continuation |" in sampled and "| pre-edit | Lyon. He | x |" in sampled
