"""Architecture adapters as data: module-name templates and tokenizer policy per `config.model_type`.

One frozen `ArchSpec` per supported architecture (gpt2, gptj, llama, mistral, qwen2), looked up by
`get_arch(model_or_config)` from `config.model_type` only, never from a model's name or path.

Weight convention (used by every editor): `weight_view(model, name)` returns the weight of a linear
layer as a **(d_out, d_in)** tensor that shares storage with the parameter, i.e. the `nn.Linear`
convention `y = W @ x`. GPT-2 stores its linear layers as `Conv1D` with weight `[d_in, d_out]`
(`y = x @ W`); for those the view is `param.T`. An in-place update of the view (`view.add_(delta)`
under `torch.no_grad()`) therefore edits the model for both storage layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D


class UnsupportedArchitectureError(ValueError):
    """The model's `config.model_type` has no `ArchSpec`."""


@dataclass(frozen=True, kw_only=True)
class TokenizerPolicy:
    """How a tokenizer of this architecture is prepared.

    `pad_to_eos`: set pad = eos when the tokenizer has no pad token (GPT-2, LLaMA ship none).
    `padding_side`: the side set on load; left suits batched generation and last-token reads.
    `add_bos`: whether the architecture's own tokenizers prepend BOS (used when building world and
    tiny tokenizers in code; a tokenizer loaded from disk keeps its own setting).
    """

    pad_to_eos: bool = True
    padding_side: Literal["left", "right"] = "left"
    add_bos: bool = False


@dataclass(frozen=True, kw_only=True)
class ArchSpec:
    """Module-name templates of one architecture; `{}` in a template is the layer index."""

    model_type: str
    layer: str
    mlp_in: str  # first MLP projection (GPT: c_fc / fc_in; gated MLPs: up_proj)
    mlp_gate: str | None  # gate projection of gated (SwiGLU) MLPs, else None
    mlp_out: str  # MLP output projection (the "W_out" edited by ROME, MEMIT, WISE)
    attn_out: str
    embed: str
    pos_embed: str | None  # learned absolute position embedding, None for rotary models
    final_norm: str
    lm_head: str
    conv1d: bool  # linear weights stored [d_in, d_out] (transformers' Conv1D)
    n_layers_attr: str
    hidden_size_attr: str
    tokenizer: TokenizerPolicy

    def layer_name(self, layer: int) -> str:
        return self.layer.format(layer)

    def mlp_in_name(self, layer: int) -> str:
        return self.mlp_in.format(layer)

    def mlp_out_name(self, layer: int) -> str:
        return self.mlp_out.format(layer)

    def attn_out_name(self, layer: int) -> str:
        return self.attn_out.format(layer)

    def n_layers(self, config: Any) -> int:
        return int(getattr(config, self.n_layers_attr))

    def hidden_size(self, config: Any) -> int:
        return int(getattr(config, self.hidden_size_attr))


def _gated(model_type: str, policy: TokenizerPolicy) -> ArchSpec:
    """LLaMA-family layout (llama, mistral, qwen2): `model.layers.{}` with a SwiGLU MLP."""
    return ArchSpec(
        model_type=model_type,
        layer="model.layers.{}",
        mlp_in="model.layers.{}.mlp.up_proj",
        mlp_gate="model.layers.{}.mlp.gate_proj",
        mlp_out="model.layers.{}.mlp.down_proj",
        attn_out="model.layers.{}.self_attn.o_proj",
        embed="model.embed_tokens",
        pos_embed=None,
        final_norm="model.norm",
        lm_head="lm_head",
        conv1d=False,
        n_layers_attr="num_hidden_layers",
        hidden_size_attr="hidden_size",
        tokenizer=policy,
    )


ARCHS: dict[str, ArchSpec] = {
    "gpt2": ArchSpec(
        model_type="gpt2",
        layer="transformer.h.{}",
        mlp_in="transformer.h.{}.mlp.c_fc",
        mlp_gate=None,
        mlp_out="transformer.h.{}.mlp.c_proj",
        attn_out="transformer.h.{}.attn.c_proj",
        embed="transformer.wte",
        pos_embed="transformer.wpe",
        final_norm="transformer.ln_f",
        lm_head="lm_head",
        conv1d=True,
        n_layers_attr="n_layer",
        hidden_size_attr="n_embd",
        tokenizer=TokenizerPolicy(add_bos=False),
    ),
    "gptj": ArchSpec(
        model_type="gptj",
        layer="transformer.h.{}",
        mlp_in="transformer.h.{}.mlp.fc_in",
        mlp_gate=None,
        mlp_out="transformer.h.{}.mlp.fc_out",
        attn_out="transformer.h.{}.attn.out_proj",
        embed="transformer.wte",
        pos_embed=None,
        final_norm="transformer.ln_f",
        lm_head="lm_head",
        conv1d=False,
        n_layers_attr="n_layer",
        hidden_size_attr="n_embd",
        tokenizer=TokenizerPolicy(add_bos=False),
    ),
    "llama": _gated("llama", TokenizerPolicy(add_bos=True)),
    "mistral": _gated("mistral", TokenizerPolicy(add_bos=True)),
    "qwen2": _gated("qwen2", TokenizerPolicy(add_bos=False)),
}


def get_arch(model_or_config: Any) -> ArchSpec:
    """The `ArchSpec` of a model, a config, or a `model_type` string, keyed by `config.model_type`."""
    if isinstance(model_or_config, str):
        model_type = model_or_config
    else:
        config = getattr(model_or_config, "config", model_or_config)
        model_type = getattr(config, "model_type", None)
    if model_type not in ARCHS:
        raise UnsupportedArchitectureError(
            f"unsupported model_type {model_type!r}; supported: {sorted(ARCHS)}. "
            "Add an ArchSpec to core/models/arch.py to support it."
        )
    return ARCHS[model_type]


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called `name` (dotted path); KeyError naming the model class when absent."""
    try:
        return model.get_submodule(name)
    except AttributeError as e:
        raise KeyError(f"{type(model).__name__} has no module {name!r}") from e


def is_conv1d(module: nn.Module) -> bool:
    """True for transformers' `Conv1D` (weight stored [d_in, d_out])."""
    return isinstance(module, Conv1D)


def linear_weight(model: nn.Module, name: str) -> tuple[nn.Parameter, bool]:
    """The weight parameter of linear module `name` and whether it is Conv1D-stored ([d_in, d_out])."""
    module = get_module(model, name)
    if not isinstance(module, (nn.Linear, Conv1D)):
        raise TypeError(f"module {name!r} is a {type(module).__name__}, not a linear layer")
    return module.weight, is_conv1d(module)


def mlp_out_weight(model: nn.Module, layer: int) -> tuple[nn.Parameter, bool]:
    """The MLP output projection (W_out) of `layer`: (parameter, conv1d)."""
    return linear_weight(model, get_arch(model).mlp_out_name(layer))


def as_out_in(weight: torch.Tensor, conv1d: bool) -> torch.Tensor:
    """A (d_out, d_in) view of `weight` sharing its storage (transposed when Conv1D-stored)."""
    return weight.T if conv1d else weight


def weight_view(model: nn.Module, name: str) -> torch.Tensor:
    """The weight of linear module `name` as a (d_out, d_in) view sharing storage with the parameter.

    Invariant: `view @ x` equals the module's output minus bias for an input vector `x`; editing the
    view in place (under `torch.no_grad()`) edits the model.
    """
    param, conv1d = linear_weight(model, name)
    return as_out_in(param.data, conv1d)
