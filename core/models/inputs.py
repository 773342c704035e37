"""Batched model inputs: padded encodings whose position ids ignore the padding.

Models with learned absolute positions (GPT-2) read position ids from the caller; without them a
left-padded row is shifted by its padding and its logits change. `encode_batch` returns position
ids counted over real tokens only, so a padded row gives the logits of the same text alone (rotary
models are shift-invariant anyway; passing the ids is harmless there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from transformers.tokenization_utils_base import PreTrainedTokenizerBase


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions 0, 1, ... over the real tokens of each row; padding gets 0.  # (B, T) -> (B, T)"""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def encode_batch(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    device: str | torch.device = "cpu",
    *,
    padding_side: Literal["left", "right"] = "left",
    add_special_tokens: bool = True,
) -> dict[str, torch.Tensor]:
    """Tokenize `texts` into one padded batch: input_ids, attention_mask, position_ids, all (B, T).

    Left padding (the default) puts every row's last real token at index -1.
    """
    if tokenizer.pad_token_id is None:
        raise ValueError("tokenizer has no pad token; load it with core.models.load_model")
    enc = tokenizer(
        list(texts), padding=True, return_tensors="pt", padding_side=padding_side,
        add_special_tokens=add_special_tokens,
    )
    mask = enc["attention_mask"]
    return {
        "input_ids": enc["input_ids"].to(device),
        "attention_mask": mask.to(device),
        "position_ids": position_ids_from_mask(mask).to(device),
    }
