"""ROME: rank-one model editing of one MLP output projection (Meng et al. 2022, Eq. 2 and §3).

For each request, in order (EasyEdit applies a list of requests one by one):
1. k* = mean over context prefixes ("" plus `context_template_count` texts sampled from the model,
   `rome_parts.context_prefixes`) of the input of W_out (`rewrite_module_tmp`, default: the arch's MLP
   output projection) at the subject's last token (ROME Eq. 3).
2. delta* = `rome_parts.optimise_delta` on the output of W_out at that token (ROME Eq. 4: target NLL over
   all prefixes + KL on "{subject} is a" + weight decay, Adam, early stop, norm clamp); v* = W k* + b + delta*,
   the mean over prefixes of the optimised outputs (the reference uses the plain prompt's output instead
   of the mean; the two agree when the prefixes do not move the key).
3. With `mom2_adjustment` (ROME's own setting, on by default here; EasyEdit silently turned it off,
   easyedit-notes §10.1) u = C^-1 k*, with C = E[k k^T] from `core.stats` (cached under `stats_dir`);
   without it u = k*. Then (ROME Eq. 2)
       Delta W = (v* - W k* - b) u^T / (u^T k*),   so that   (W + Delta W) k* + b = v*   exactly.
   The scale of C cancels, so ROME has no `mom2_update_weight` (MEMIT's lambda).
GPT-2's Conv1D stores W as [d_in, d_out]; `core.models.arch.as_out_in` gives the (d_out, d_in) view the
update is written to, for both layouts. Only that one weight changes; `Undo` restores it bit-exactly.
Speed: see `rome_parts` (hidden states below the layer cached once, all prefixes batched, LM head only at
scored positions, early stop).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from core.editors.base import Undo, resolve_module_name, snapshot_parameters
from core.editors.rome_parts import (
    DeltaSettings,
    compute_keys,
    context_prefixes,
    covariance_solver,
    optimise_delta,
)
from core.models.arch import as_out_in, get_arch, linear_weight
from core.types import EditRequest

log = logging.getLogger(__name__)


def _check(name: str, value: object, kind: type | tuple[type, ...], minimum: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{name} must be {kind}, got {value!r} (write floats as 5.0e-1 in YAML)")
    if minimum is not None and value < minimum:  # type: ignore[operator]
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class LocateEditHyperParams:
    """Fields shared by ROME and MEMIT (the v*/z optimisation and the covariance statistics)."""

    layers: tuple[int, ...]
    rewrite_module_tmp: str | None  # null = the arch spec's MLP output projection
    fact_token: Literal["subject_last", "last"]
    v_num_grad_steps: int
    v_lr: float
    v_loss_layer: int | None  # null = last layer (the only one supported: every reference config uses it)
    v_weight_decay: float
    clamp_norm_factor: float
    kl_factor: float
    early_stop_loss: float
    mom2_adjustment: bool
    mom2_dataset: str  # core.stats.corpus name, e.g. "world:default:0" or "hf:wikitext:wikitext-103-raw-v1"
    mom2_n_samples: int
    mom2_dtype: Literal["float32", "float64"]
    mom2_ridge: float  # adds mom2_ridge * mean(diag C) * I to C (0 in the reference)
    stats_dir: str | None  # covariance cache root; null = compute in memory on every call
    context_template_count: int
    context_template_length: int

    def __post_init__(self) -> None:
        if not isinstance(self.layers, tuple) or not self.layers:
            raise ValueError(f"layers must be a non-empty tuple of ints, got {self.layers!r}")
        for x in self.layers:
            _check("layers[]", x, int, 0)
        if list(self.layers) != sorted(set(self.layers)):
            raise ValueError(f"layers must be increasing without repeats, got {self.layers!r}")
        if self.rewrite_module_tmp is not None and "{}" not in self.rewrite_module_tmp:
            raise ValueError(f"rewrite_module_tmp needs a '{{}}' layer slot, got {self.rewrite_module_tmp!r}")
        if self.fact_token not in ("subject_last", "last"):
            raise ValueError(f"fact_token must be 'subject_last' or 'last', got {self.fact_token!r}")
        for name in ("v_num_grad_steps", "mom2_n_samples", "context_template_length"):
            _check(name, getattr(self, name), int, 1)
        _check("context_template_count", self.context_template_count, int, 0)
        for name in (
            "v_lr",
            "v_weight_decay",
            "clamp_norm_factor",
            "kl_factor",
            "early_stop_loss",
            "mom2_ridge",
        ):
            _check(name, getattr(self, name), (int, float), 0)
        if self.v_loss_layer is not None:
            _check("v_loss_layer", self.v_loss_layer, int, 0)
        if not isinstance(self.mom2_adjustment, bool):
            raise ValueError(f"mom2_adjustment must be a bool, got {self.mom2_adjustment!r}")
        if self.mom2_dtype not in ("float32", "float64"):
            raise ValueError(f"mom2_dtype must be float32 or float64, got {self.mom2_dtype!r}")
        if self.stats_dir is not None and not isinstance(self.stats_dir, str):
            raise ValueError(f"stats_dir must be a path string or null, got {self.stats_dir!r}")

    def delta_settings(self) -> DeltaSettings:
        return DeltaSettings(
            v_num_grad_steps=self.v_num_grad_steps,
            v_lr=self.v_lr,
            v_weight_decay=self.v_weight_decay,
            clamp_norm_factor=self.clamp_norm_factor,
            kl_factor=self.kl_factor,
            early_stop_loss=self.early_stop_loss,
            fact_token=self.fact_token,
        )

    def check_model(self, model: nn.Module) -> None:
        """Layers exist and `v_loss_layer` is the last one."""
        n = get_arch(model).n_layers(model.config)
        if max(self.layers) >= n:
            raise ValueError(f"layers {self.layers} out of range for a {n}-layer model")
        if self.v_loss_layer is not None and self.v_loss_layer != n - 1:
            raise ValueError(
                f"v_loss_layer must be null or the last layer ({n - 1}), got {self.v_loss_layer}"
            )


@dataclass(frozen=True, kw_only=True)
class ROMEHyperParams(LocateEditHyperParams):
    """ROME hparams: exactly one layer."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.layers) != 1:
            raise ValueError(f"ROME edits exactly one layer, got {self.layers!r}")


def rome_update(
    w: torch.Tensor, bias: torch.Tensor | None, k_star: torch.Tensor, v_star: torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """Delta W (d_out, d_in) of ROME Eq. 2: (v* - W k* - b) u^T / (u^T k*); then (W + Delta W) k* + b = v*."""
    resid = v_star - w @ k_star - (bias if bias is not None else 0)  # (d_out,)
    return torch.outer(resid, u) / (u @ k_star)


def apply_rome(model: nn.Module, tok, requests: Sequence[EditRequest], hp: ROMEHyperParams) -> Undo:
    """Apply one rank-one update per request (in order) to W_out of `hp.layers[0]`; return the restoring `Undo`.

    Invariant: only that projection's weight changes; right after request i's update, W' k*_i + b = v*_i.
    On an exception the model is restored before re-raising.
    """
    if not requests:
        raise ValueError("no requests to edit")
    hp.check_model(model)
    layer = hp.layers[0]
    name = resolve_module_name(model, hp.rewrite_module_tmp, layer)
    param, conv1d = linear_weight(model, name)
    bias = model.get_submodule(name).bias
    undo = snapshot_parameters(model, [f"{name}.weight"], description=f"ROME on {len(requests)} request(s)")
    try:
        solve = covariance_solver(model, tok, name, hp) if hp.mom2_adjustment else None
        prefixes = context_prefixes(model, tok, hp.context_template_count, hp.context_template_length)
        for req in requests:
            k_star = compute_keys(model, tok, name, [req], prefixes, hp.fact_token)[0].mean(0).double()
            delta, _ = optimise_delta(
                model, tok, req, prefixes, layer=layer, edit_module=name, settings=hp.delta_settings()
            )
            w = as_out_in(param.data, conv1d)  # (d_out, d_in) view sharing storage
            b = bias.detach().double() if bias is not None else None
            v_star = w.double() @ k_star + (b if b is not None else 0) + delta.double()
            u = solve(k_star) if solve is not None else k_star  # C^-1 k*
            with torch.no_grad():
                w.add_(rome_update(w.double(), b, k_star, v_star, u).to(w.dtype))
            log.debug("ROME %s: |delta| %.3g", req.case_id, delta.norm().item())
    except BaseException:
        undo()
        raise
    return undo
