"""Fresh model configs of each supported architecture from a handful of sizes (random init, no hub).

`make_config` is the single place that maps (model_type, sizes, special-token ids) to a
`transformers` config; tiny test models and the pretrained world LMs both go through it. Dropout is
off everywhere (small models on a small world memorise better without it).
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import GPT2Config, GPTJConfig, LlamaConfig, MistralConfig, PretrainedConfig, Qwen2Config

from core.models.arch import ARCHS, UnsupportedArchitectureError


@dataclass(frozen=True, kw_only=True)
class ModelSize:
    """Sizes of a fresh model; `intermediate` defaults to 4 x hidden (GPT) or 8/3 x hidden (gated)."""

    n_layers: int = 2
    hidden: int = 32
    n_heads: int = 4
    n_kv_heads: int | None = None  # gated models only; None = n_heads
    intermediate: int | None = None
    max_positions: int = 128
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        if self.hidden % self.n_heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by n_heads {self.n_heads}")
        if self.n_kv_heads is not None and self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")


def make_config(
    model_type: str,
    vocab_size: int,
    size: ModelSize,
    *,
    bos_token_id: int,
    eos_token_id: int,
    pad_token_id: int,
) -> PretrainedConfig:
    """A config of `model_type` with the given sizes and special-token ids, dropout 0."""
    if model_type not in ARCHS:
        raise UnsupportedArchitectureError(f"no config builder for {model_type!r}; supported: {sorted(ARCHS)}")
    ids = {"bos_token_id": bos_token_id, "eos_token_id": eos_token_id, "pad_token_id": pad_token_id}
    head_dim = size.hidden // size.n_heads
    if model_type == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size, n_positions=size.max_positions, n_embd=size.hidden, n_layer=size.n_layers,
            n_head=size.n_heads, n_inner=size.intermediate, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            tie_word_embeddings=size.tie_embeddings, **ids,
        )
    if model_type == "gptj":
        return GPTJConfig(
            vocab_size=vocab_size, n_positions=size.max_positions, n_embd=size.hidden, n_layer=size.n_layers,
            n_head=size.n_heads, n_inner=size.intermediate, rotary_dim=max(2, head_dim // 2),
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=size.tie_embeddings, **ids,
        )
    gated = {"llama": LlamaConfig, "mistral": MistralConfig, "qwen2": Qwen2Config}[model_type]
    intermediate = size.intermediate or 8 * size.hidden // 3
    return gated(
        vocab_size=vocab_size, hidden_size=size.hidden, intermediate_size=intermediate,
        num_hidden_layers=size.n_layers, num_attention_heads=size.n_heads,
        num_key_value_heads=size.n_kv_heads or size.n_heads, max_position_embeddings=size.max_positions,
        attention_dropout=0.0, tie_word_embeddings=size.tie_embeddings, **ids,
    )
