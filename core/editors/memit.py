"""MEMIT: mass-editing memory in a transformer (Meng et al. 2023, Eq. 14-16 and Alg. 1).

For a batch of requests and layers l_1 < ... < l_L (all of `hp.layers`):
1. z_i (MEMIT Eq. 16, `compute_z`): the residual-stream output of the TOP layer l_L at request i's lookup
   token, optimised like ROME's v* (`rome_parts.optimise_delta` with the delta added to the output of
   block l_L): z_i = h_i + delta_i, with h_i that output on the plain prompt before editing.
2. For each layer l in the range, bottom to top (Alg. 1, lines 6-13):
   K_l (d_in, n) = keys of the requests at layer l, averaged over the context prefixes;
   R (d_out, n)  = (z - h(current model at l_L, plain prompt)) / (number of layers still to update);
   Delta W_l     = R K_l^T (lambda C_l + K_l K_l^T)^-1        (Eq. 14-15, lambda = mom2_update_weight),
   applied in place, so the next layer's keys and residual see it ("recompute"). `memit_solve` computes
   it through an n x n system and a factorisation of C_l kept across edits (exact in exact arithmetic).
C_l = E[k k^T] from `core.stats` (cached under `stats_dir`; identity when `mom2_adjustment` is false). The
solve runs in float64. Scale note: lambda C competes with K K^T through k^T C^-1 k, which is about d_in for
a typical key, so lambda scales with the key width (15000 for GPT-J's 16384-wide keys; ~d_in here).
Only the W_out weights of `hp.layers` change; `Undo` restores them bit-exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from core.editors.base import Undo, resolve_module_name, snapshot_parameters
from core.editors.rome import LocateEditHyperParams
from core.editors.rome_parts import compute_keys, context_prefixes, covariance_solver, optimise_delta
from core.models.arch import as_out_in, get_arch, linear_weight
from core.types import EditRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class MEMITHyperParams(LocateEditHyperParams):
    """MEMIT hparams: the ROME/MEMIT shared fields plus lambda and the residual-stream block template."""

    layer_module_tmp: str | None  # null = the arch spec's decoder block (z is read at its output)
    mom2_update_weight: float  # lambda of Eq. 14

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layer_module_tmp is not None and "{}" not in self.layer_module_tmp:
            raise ValueError(f"layer_module_tmp needs a '{{}}' layer slot, got {self.layer_module_tmp!r}")
        w = self.mom2_update_weight
        if isinstance(w, bool) or not isinstance(w, int | float) or w <= 0:
            raise ValueError(f"mom2_update_weight must be a number > 0, got {w!r}")


def memit_solve(
    keys: torch.Tensor, resid: torch.Tensor, c_inv_keys: torch.Tensor, lam: float
) -> torch.Tensor:
    """Delta W (d_out, d_in) = R K^T (lam C + K K^T)^-1 for K (d_in, n), R (d_out, n), given C^-1 K (d_in, n).

    Computed as R (lam I_n + K^T C^-1 K)^-1 (C^-1 K)^T (push-through / Woodbury identity: (lam C + K K^T)
    C^-1 K = K (lam I_n + K^T C^-1 K)), so an edit solves an n x n system instead of a d_in x d_in one and
    C^-1 comes from `rome_parts.covariance_solver`'s factorisation, kept across edits (C is the unedited
    model's statistic). Invariant (normal equations): Delta W (lam C + K K^T) = R K^T.
    """
    gram = lam * torch.eye(keys.shape[1], dtype=keys.dtype, device=keys.device) + keys.T @ c_inv_keys
    return resid @ torch.linalg.solve(gram, c_inv_keys.T)  # gram is symmetric


def apply_memit(model: nn.Module, tok, requests: Sequence[EditRequest], hp: MEMITHyperParams) -> Undo:
    """Edit all `requests` at once into W_out of `hp.layers` (MEMIT Alg. 1); return the restoring `Undo`."""
    if not requests:
        raise ValueError("no requests to edit")
    hp.check_model(model)
    names = [resolve_module_name(model, hp.rewrite_module_tmp, layer) for layer in hp.layers]
    top = hp.layers[-1]
    block = (hp.layer_module_tmp or get_arch(model).layer).format(top)
    undo = snapshot_parameters(
        model, [f"{n}.weight" for n in names], description=f"MEMIT on {len(requests)} request(s)"
    )
    try:
        # C^-1 of each layer, from the unedited model's statistics (identity without mom2_adjustment)
        solvers = {
            name: covariance_solver(model, tok, name, hp) if hp.mom2_adjustment else None for name in names
        }
        prefixes = context_prefixes(model, tok, hp.context_template_count, hp.context_template_length)
        zs = []
        for req in requests:
            delta, h_init = optimise_delta(
                model, tok, req, prefixes, layer=top, edit_module=block, settings=hp.delta_settings()
            )
            zs.append((h_init + delta).double())
        z = torch.stack(zs, dim=1)  # (d, n)
        for i, (layer, name) in enumerate(zip(hp.layers, names, strict=True)):
            keys = (
                compute_keys(model, tok, name, requests, prefixes, hp.fact_token).mean(1).double().T
            )  # (d_in, n)
            cur = compute_keys(model, tok, block, requests, [""], hp.fact_token, output=True)[:, 0].double().T
            resid = (z - cur) / (len(hp.layers) - i)  # (d, n)
            param, conv1d = linear_weight(model, name)
            c_inv_keys = solvers[name](keys) if solvers[name] is not None else keys
            w = as_out_in(param.data, conv1d)  # (d_out, d_in) view sharing storage
            with torch.no_grad():
                w.add_(memit_solve(keys, resid, c_inv_keys, hp.mom2_update_weight).to(w.dtype))
            log.debug("MEMIT layer %d: |resid| %.3g", layer, resid.norm().item())
    except BaseException:
        undo()
        raise
    return undo
