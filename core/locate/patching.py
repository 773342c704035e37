"""Batched noisy and patched forward passes: the engine under causal tracing (Meng et al. 2022, §2.1).

One forward runs C configurations x S noise samples as a (C * S, T) batch; row `r = c * S + s` is
configuration `c` under noise draw `s`. Three interventions, all vectorised (one indexing op per
hooked module, never a Python loop over tokens or rows):

* noise: `noise[s]` (S, span, d) is added to the output of the token embedding module at positions
  [b, e) of every row of sample `s` (ROME hooks the token embedding, before GPT-2's position embedding);
* `Patch` (restore or freeze): a bool mask (C, n_layers, T) says at which (layer, position) the output
  of the layer's module (block, MLP output projection or attention output projection, from the
  `ArchSpec` templates) is overwritten, and `values` (n_layers, 1 or S, T, d) gives what is written:
  one clean value broadcast to every sample (restoration) or one value per sample (freezing at the
  corrupted run's values, ROME's "severed" runs).

The hooks are private to this package and removed on exit, also when the forward raises.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from core.models.arch import ArchSpec, get_arch, get_module

Site = Literal["hidden", "mlp", "attn"]


def module_name(spec: ArchSpec, site: Site, layer: int) -> str:
    """The module whose output is the `site` state of `layer`: block, MLP output or attention output."""
    if site == "hidden":
        return spec.layer_name(layer)
    if site == "mlp":
        return spec.mlp_out_name(layer)
    if site == "attn":
        return spec.attn_out_name(layer)
    raise ValueError(f"unknown site {site!r}; expected 'hidden', 'mlp' or 'attn'")


@dataclass(frozen=True, eq=False)
class Patch:
    """Overwrite `site` outputs where `mask` (C, n_layers, T) is True with `values` (n_layers, 1|S, T, d)."""

    site: Site
    mask: torch.Tensor
    values: torch.Tensor

    def chunk(self, c0: int, c1: int) -> Patch:
        return Patch(self.site, self.mask[c0:c1], self.values)


def _split(output):
    """(hidden tensor, rebuild function) of a module output that is a tensor or a tuple led by one."""
    if isinstance(output, tuple):
        return output[0], lambda h: (h, *output[1:])
    return output, lambda h: h


def _patch_hook(patch: Patch, layer: int, n_samples: int):
    mask = patch.mask[:, layer, :]  # (C, T)
    cs, ts = mask.nonzero(as_tuple=True)  # (k,), (k,)
    s = torch.arange(n_samples)

    def hook(_module: nn.Module, _inputs, output):
        if cs.numel() == 0:
            return output
        h, rebuild = _split(output)
        rows = (cs[:, None] * n_samples + s[None, :]).reshape(-1).to(h.device)  # (k * S,)
        pos = ts.repeat_interleave(n_samples).to(h.device)  # (k * S,)
        vals = patch.values[layer].to(h.device, h.dtype)  # (1|S, T, d)
        samp = s.repeat(cs.numel()).to(h.device) if vals.shape[0] > 1 else torch.zeros_like(pos)
        h = h.clone()
        h[rows, pos] = vals[samp, pos]
        return rebuild(h)

    return hook


def _noise_hook(noise: torch.Tensor, span: tuple[int, int]):
    b, e = span

    def hook(_module: nn.Module, _inputs, output):
        h, rebuild = _split(output)
        reps = h.shape[0] // noise.shape[0]
        h = h.clone()
        h[:, b:e] += noise.to(h.device, h.dtype).repeat(reps, 1, 1)  # row c * S + s gets noise[s]
        return rebuild(h)

    return hook


@contextmanager
def _hooks(model: nn.Module, hooks: Sequence[tuple[str, object]]) -> Iterator[None]:
    handles = [get_module(model, name).register_forward_hook(fn) for name, fn in hooks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@dataclass(frozen=True, eq=False)
class RunOutput:
    """Per-row logits at the read positions and the recorded module outputs (name -> (rows, T, d))."""

    logits: torch.Tensor  # (rows, n_read, V), float32, on the model's device
    recorded: dict[str, torch.Tensor]


def run_patched(
    model: nn.Module,
    input_ids: torch.Tensor,
    read_positions: Sequence[int],
    *,
    n_configs: int = 1,
    noise: torch.Tensor | None = None,
    span: tuple[int, int] = (0, 0),
    patches: Sequence[Patch] = (),
    record: Sequence[tuple[Site, int]] = (),
) -> RunOutput:
    """One forward of `n_configs * S` copies of `input_ids` (1, T) with noise, patches and recordings.

    S is `noise.shape[0]` (1 without noise). `record` lists (site, layer) outputs to keep (after patching).
    """
    spec = get_arch(model)
    n_samples = 1 if noise is None else int(noise.shape[0])
    rows = n_configs * n_samples
    hooks: list[tuple[str, object]] = []
    if noise is not None:
        hooks.append((spec.embed, _noise_hook(noise, span)))
    n_layers = spec.n_layers(model.config)
    for patch in patches:
        if patch.mask.shape[:2] != (n_configs, n_layers):
            shape = tuple(patch.mask.shape)
            raise ValueError(f"patch mask {shape} does not match ({n_configs}, {n_layers}, T)")
        hooks += [(module_name(spec, patch.site, layer), _patch_hook(patch, layer, n_samples))
                  for layer in range(n_layers) if bool(patch.mask[:, layer].any())]
    recorded: dict[str, torch.Tensor] = {}

    def recorder(name: str):
        def hook(_module, _inputs, output):
            recorded[name] = _split(output)[0].detach()
        return hook

    hooks += [(module_name(spec, site, layer), recorder(f"{site}.{layer}")) for site, layer in record]
    ids, first = input_ids.expand(rows, -1), min(read_positions)
    keep = ids.shape[1] - first  # logits of the last `keep` positions only
    with _hooks(model, hooks), torch.no_grad():
        logits = model(input_ids=ids, use_cache=False, logits_to_keep=keep).logits  # (rows, keep, V)
    return RunOutput(logits[:, [p - first for p in read_positions]].float(), recorded)
