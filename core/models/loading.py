"""Load a causal LM and its tokenizer from a local folder or a hub id, with the architecture's policy.

`load_model` reads the config first, resolves the `ArchSpec` from `config.model_type` (unknown
types fail before any weight is read), loads weights through `AutoModelForCausalLM.from_pretrained`
(safetensors preferred) and applies the architecture's tokenizer policy: pad = eos when the
tokenizer has no pad token, and the policy's padding side. The model is returned in eval mode.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from core.models.arch import ArchSpec, get_arch

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """A torch dtype from "float32" / "float16" / "bfloat16" (or a torch.dtype, passed through)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(_DTYPES)} or a torch.dtype")
    return _DTYPES[dtype]


def apply_tokenizer_policy(tokenizer: PreTrainedTokenizerBase, spec: ArchSpec) -> PreTrainedTokenizerBase:
    """Set pad = eos when absent (if the policy says so) and the policy's padding side, in place."""
    if tokenizer.pad_token is None and spec.tokenizer.pad_to_eos:
        if tokenizer.eos_token is None:
            raise ValueError(f"{spec.model_type} tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = spec.tokenizer.padding_side
    return tokenizer


def load_model(
    name_or_path: str | Path,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
    *,
    trust_remote_code: bool = False,
    revision: str | None = None,
    use_safetensors: bool | None = None,
    local_files_only: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (model, tokenizer) from a folder written by `save_pretrained` or a hub id.

    Args:
        dtype: weights dtype; "float32" by default (edits in half precision are a run setting).
        use_safetensors: None prefers safetensors and falls back to PyTorch `.bin` files; True
            requires safetensors.
        trust_remote_code: explicit opt-in; off by default. Remote-code models still need an
            `ArchSpec` for their `model_type`.

    Invariants: the model is in eval mode on `device`; `get_arch(model)` succeeds; the tokenizer has
    a pad token; a config without `pad_token_id` gets the tokenizer's.
    """
    source = str(name_or_path)
    common = {"trust_remote_code": trust_remote_code, "revision": revision, "local_files_only": local_files_only}
    config = AutoConfig.from_pretrained(source, **common)
    spec = get_arch(config)
    model = AutoModelForCausalLM.from_pretrained(
        source, config=config, dtype=resolve_dtype(dtype), use_safetensors=use_safetensors, **common
    )
    tokenizer = apply_tokenizer_policy(AutoTokenizer.from_pretrained(source, **common), spec)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    model.eval()
    log.info("loaded %s (%s, %s) on %s", source, spec.model_type, model.dtype, device)
    return model, tokenizer


def load_tokenizer(
    name_or_path: str | Path,
    *,
    trust_remote_code: bool = False,
    revision: str | None = None,
    local_files_only: bool = False,
) -> tuple[PreTrainedTokenizerBase, Any]:
    """(tokenizer with the arch's policy, config) of a model folder or hub id, without loading the weights
    (what a trainer that needs only token ids and the vocabulary size should read for a 7B model)."""
    source = str(name_or_path)
    common = {"trust_remote_code": trust_remote_code, "revision": revision, "local_files_only": local_files_only}
    config = AutoConfig.from_pretrained(source, **common)
    return apply_tokenizer_policy(AutoTokenizer.from_pretrained(source, **common), get_arch(config)), config
