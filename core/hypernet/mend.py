"""The MEND editor: rank-one gradient factors -> transformed pseudo-gradient -> edited weights (MEND §3).

For a linear map y = W u with output gradient delta, the fine-tuning gradient of a loss summed over the
tokens t of a batch is grad_W = sum_t delta_t u_t^T (MEND §3.1, Eq. 2). `capture_factors` reads u_t
(the module input) and delta_t (the gradient at the module output) of every edited module from ONE
forward and backward pass with hooks, keeping the tokens whose u and delta are both non-zero (MEND's
`nz_mask`: padding and positions after the last target token carry no gradient). `MENDEditor` sends
each weight's factors through its `GradientTransform` (`core.hypernet.nets`; one per weight shape when
`shared`, with the weight's index l as its mode) and returns

    W' = W - alpha_l * sum_t delta~_t u~_t^T                              (MEND §3.1 / Alg. 1)

with a learned step alpha_l per edited weight, initialised to `edit_lr`. The reference code adds the
update (`p + lr * g`, easyedit-notes §4) and lets the learned alphas absorb the sign; here it is a
descent step, so an untrained editor (identity MLP, no statistics) is exactly one gradient-descent step
of size `edit_lr`. Weights are handled in the (d_out, d_in) convention; GPT-2 `Conv1D` weights, stored
(d_in, d_out), are transposed through the arch spec (`core.models.arch.linear_weight`), never by model
name. `new_weights` is differentiable with respect to the editor, so the meta-trainer can apply the
result with `torch.func.functional_call`; the factors themselves are detached, as in MEND.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from core.hypernet.config import MENDNetConfig
from core.hypernet.nets import GradientTransform
from core.models.arch import get_arch, linear_weight

Factors = dict[str, tuple[torch.Tensor, torch.Tensor]]  # param name -> (u (N, d_in), delta (N, d_out))


@dataclass(frozen=True)
class EditedWeight:
    """One weight MEND edits: its module, parameter name, (d_out, d_in) shape and storage layout."""

    module: str
    param: str
    d_out: int
    d_in: int
    conv1d: bool  # stored (d_in, d_out) as transformers' Conv1D

    @property
    def shape(self) -> tuple[int, int]:
        return (self.d_out, self.d_in)


def module_templates(model: nn.Module, cfg: MENDNetConfig) -> tuple[str, ...]:
    """`cfg.inner_modules`, or the arch spec's MLP projections (gate if gated, in, out) when it is None."""
    if cfg.inner_modules is not None:
        return cfg.inner_modules
    spec = get_arch(model)
    return tuple(t for t in (spec.mlp_gate, spec.mlp_in, spec.mlp_out) if t is not None)


def resolve_edited_weights(model: nn.Module, cfg: MENDNetConfig) -> tuple[EditedWeight, ...]:
    """The weights `cfg` edits in `model`, layer by layer in template order (the order of the alphas)."""
    n_layers = get_arch(model).n_layers(model.config)
    bad = [x for x in cfg.layers if x >= n_layers]
    if bad:
        raise ValueError(f"layers {bad} do not exist: the model ({model.config.model_type}) has {n_layers}")
    out = []
    for layer in cfg.layers:
        for template in module_templates(model, cfg):
            name = template.format(layer)
            param, conv1d = linear_weight(model, name)
            d_out, d_in = param.shape[::-1] if conv1d else param.shape
            out.append(EditedWeight(name, f"{name}.weight", int(d_out), int(d_in), conv1d))
    return tuple(out)


def fingerprint(weights: Sequence[EditedWeight]) -> list[list[Any]]:
    """JSON-able [param, d_out, d_in, conv1d] rows: what a checkpoint was trained to edit."""
    return [[w.param, w.d_out, w.d_in, w.conv1d] for w in weights]


@contextlib.contextmanager
def _record_io(
    model: nn.Module, modules: Sequence[str]
) -> Iterator[dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Within the block, `box[name] = (input, output)` of each named module's latest call."""
    box: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for name in modules:

        def hook(_mod: nn.Module, args: tuple[Any, ...], out: torch.Tensor, name: str = name) -> None:
            box[name] = (args[0], out)

        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        yield box
    finally:
        for h in handles:
            h.remove()


def capture_factors(
    model: nn.Module,
    weights: Sequence[EditedWeight],
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    model_inputs: Mapping[str, torch.Tensor],
    params: Mapping[str, torch.Tensor] | None = None,
) -> Factors:
    """Per edited weight: (u, delta) of the tokens with non-zero u and delta, from one forward/backward.

    `loss_fn(logits)` is the fine-tuning loss (MEND: the NLL of the target tokens); `params` optionally
    overrides parameters (e.g. weights already edited functionally). Model parameters get no `.grad`.
    Invariant: sum_t delta_t u_t^T equals d loss / d W in the (d_out, d_in) convention.
    """
    current = dict(model.named_parameters())
    overrides = dict(params or {})
    for w in weights:  # leaf copies that require grad, so every edited module's output does
        overrides[w.param] = overrides.get(w.param, current[w.param]).detach().requires_grad_(True)
    with torch.enable_grad(), _record_io(model, [w.module for w in weights]) as box:
        logits = functional_call(model, overrides, args=(), kwargs=dict(model_inputs)).logits
        loss = loss_fn(logits)
    outputs = [box[w.module][1] for w in weights]
    deltas = torch.autograd.grad(loss, outputs)
    factors: Factors = {}
    for w, delta in zip(weights, deltas, strict=True):
        u = box[w.module][0].detach().reshape(-1, w.d_in)  # (B*T, d_in)
        d = delta.detach().reshape(-1, w.d_out)  # (B*T, d_out)
        keep = (u != 0).any(-1) & (d != 0).any(-1)
        factors[w.param] = (u[keep], d[keep])
    return factors


class MENDEditor(nn.Module):
    """Gradient transforms plus per-weight steps alpha for a fixed list of edited weights."""

    def __init__(self, cfg: MENDNetConfig, weights: Sequence[EditedWeight]) -> None:
        super().__init__()
        if not weights:
            raise ValueError("MEND needs at least one edited weight")
        self.cfg, self.weights = cfg, tuple(weights)
        self.keys: dict[str, tuple[str, int | None]] = {}  # param -> (transform key, mode)
        groups: dict[tuple[int, int], list[EditedWeight]] = {}
        for w in self.weights:
            groups.setdefault(w.shape, []).append(w)
        transforms = {}
        for shape, members in groups.items():
            for i, w in enumerate(members):
                key = f"{shape[0]}x{shape[1]}" if cfg.shared else w.param.replace(".", "#")
                self.keys[w.param] = (key, i if cfg.shared else None)
                if key not in transforms:
                    transforms[key] = GradientTransform(
                        w.d_in, w.d_out, rank=cfg.rank, n_hidden=cfg.n_hidden, combine=cfg.combine,
                        norm=cfg.norm, n_modes=len(members) if cfg.shared else None,
                    )  # fmt: skip
        self.transforms = nn.ModuleDict(transforms)
        self.edit_lrs = nn.Parameter(torch.full((len(self.weights),), float(cfg.edit_lr)))

    def network_parameters(self) -> list[nn.Parameter]:
        """The transform MLPs' parameters (trained with `lr`; the alphas train with `lr_lr`)."""
        return list(self.transforms.parameters())

    def pseudo_gradients(self, factors: Factors) -> dict[str, torch.Tensor]:
        """param -> sum_t delta~_t u~_t^T, (d_out, d_in)."""
        out = {}
        for w in self.weights:
            if w.param not in factors:
                raise KeyError(f"no gradient factors for {w.param}")
            key, mode = self.keys[w.param]
            u, delta = factors[w.param]
            u_t, delta_t = self.transforms[key](u, delta, mode)
            out[w.param] = delta_t.T @ u_t  # (d_out, N) @ (N, d_in)
        return out

    def new_weights(self, current: Mapping[str, torch.Tensor], factors: Factors) -> dict[str, torch.Tensor]:
        """param -> W - alpha_l * pseudo-gradient, in the parameter's storage layout and dtype."""
        grads = self.pseudo_gradients(factors)
        out = {}
        for alpha, w in zip(self.edit_lrs, self.weights, strict=True):
            step = alpha * grads[w.param]
            W = current[w.param]
            out[w.param] = W - (step.T if w.conv1d else step).to(W.dtype)
        return out


def build_editor(cfg: MENDNetConfig, model: nn.Module, *, seed: int = 0) -> MENDEditor:
    """A fresh (identity) editor for `model`'s edited weights; its random V matrices come from `seed`.

    The global RNG is left untouched (the init runs under a forked RNG), so building an editor inside
    an evaluation does not shift later sampling.
    """
    weights = resolve_edited_weights(model, cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MENDEditor(cfg, weights)
