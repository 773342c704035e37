"""MEMIT: the least-squares solve satisfies its normal equations (Eq. 14-15); batch edits; exact undo."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.config import load_hparams
from core.editors.memit import MEMITHyperParams, apply_memit, memit_solve
from core.eval.scoring import score_answers
from tests.core.editors.conftest import assert_state_equal, clone_state, hparams_path, make_request


def _hp(arch: str, **changes) -> MEMITHyperParams:
    return dataclasses.replace(load_hparams(hparams_path("MEMIT", arch), MEMITHyperParams), **changes)


@pytest.mark.parametrize("n", [1, 3, 9])
def test_solve_satisfies_normal_equations(n):
    torch.manual_seed(n)
    d_in, d_out, lam = 8, 5, 3.0
    x = torch.randn(40, d_in, dtype=torch.float64)
    cov = x.T @ x / 40
    keys, resid = torch.randn(d_in, n, dtype=torch.float64), torch.randn(d_out, n, dtype=torch.float64)
    dw = memit_solve(keys, resid, torch.linalg.solve(cov, keys), lam)
    assert dw.shape == (d_out, d_in)
    assert torch.allclose(dw @ (lam * cov + keys @ keys.T), resid @ keys.T, atol=1e-10)
    direct = resid @ keys.T @ torch.linalg.inv(lam * cov + keys @ keys.T)  # Eq. 14 as written
    assert torch.allclose(dw, direct, atol=1e-10)


def test_small_lambda_maps_keys_to_residuals():
    torch.manual_seed(0)
    keys, resid = torch.randn(8, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    dw = memit_solve(keys, resid, keys, 1e-9)  # C = I
    assert torch.allclose(dw @ keys, resid, atol=1e-6)


def test_batch_edit_moves_every_prediction_and_undo_is_exact(arch, tiny):
    model, tok = tiny
    state = clone_state(model)
    reqs = [make_request(i) for i in (0, 3, 5)]
    prompts, targets = [r.prompt for r in reqs], [r.target_new for r in reqs]
    pre = score_answers(model, tok, prompts, targets)
    undo = apply_memit(model, tok, reqs, _hp(arch))
    post = score_answers(model, tok, prompts, targets)
    changed = sorted(n for n, t in model.named_parameters() if not torch.equal(t, state[n]))
    assert len(changed) == 2 and all("mlp" in n for n in changed)
    for a, b in zip(pre, post, strict=True):
        assert b.logprobs.sum() > a.logprobs.sum() + 0.2
    undo()
    assert_state_equal(model, state)


def test_hparams_rules():
    with pytest.raises(ValueError, match="mom2_update_weight"):
        _hp("gpt2", mom2_update_weight=0.0)
    with pytest.raises(ValueError, match="increasing"):
        _hp("gpt2", layers=(1, 0))
