"""Tiny models of every supported architecture, built in code for tests (no downloads).

`build_tiny_model(model_type)` gives a 2-layer random model and a byte-level BPE tokenizer trained
on `TINY_TEXTS` (a few dozen sentences of simple facts), with the architecture's BOS policy;
`save_tiny_model` writes both with `save_pretrained` so tests load them back through `load_model`.
`tiny_world_lm` trains such a model for a few seconds until it has memorised a list of sentences,
for tests that need a model that knows facts (editors, metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

from core.models.arch import ARCHS, get_arch
from core.models.configs import ModelSize, make_config
from core.models.tokenizer import save_tokenizer, train_tokenizer
from core.models.training import TrainSettings, train_causal_lm

TINY_ARCHS: tuple[str, ...] = tuple(ARCHS)
TINY_SIZE = ModelSize(n_layers=2, hidden=32, n_heads=4, max_positions=128)
TINY_LM_SIZE = ModelSize(n_layers=2, hidden=64, n_heads=4, max_positions=128)  # tiny_world_lm

_PEOPLE = ("Alice Brown", "Boris Kell", "Clara Voss", "Dmitri Lund", "Erin Page", "Farid Noor", "Greta Holm",
           "Hugo Marsh")
_CITIES = ("Lyon", "Oslo", "Porto", "Quito", "Riga", "Turin", "Utrecht", "Varna")
_JOBS = ("painter", "surgeon", "pilot", "chemist", "poet", "architect", "judge", "baker")


def _facts() -> tuple[str, ...]:
    rows = []
    for i, person in enumerate(_PEOPLE):
        rows.append(f"{person} was born in {_CITIES[i]}.")
        rows.append(f"{person} works as a {_JOBS[(i + 3) % len(_JOBS)]}.")
        rows.append(f"The city where {person} lives is {_CITIES[(i + 5) % len(_CITIES)]}.")
    return tuple(rows)


TINY_TEXTS: tuple[str, ...] = _facts()


def build_tiny_tokenizer(
    model_type: str = "gpt2", texts: Sequence[str] = TINY_TEXTS, vocab_size: int = 384
) -> PreTrainedTokenizerFast:
    """A byte-level BPE on `texts` with `model_type`'s BOS policy and left padding."""
    spec = get_arch(model_type)
    tok = train_tokenizer(texts, vocab_size, add_bos=spec.tokenizer.add_bos, min_frequency=1,
                          model_max_length=TINY_SIZE.max_positions)
    tok.padding_side = spec.tokenizer.padding_side
    return tok


def build_tiny_model(
    model_type: str = "gpt2",
    *,
    size: ModelSize = TINY_SIZE,
    seed: int = 0,
    tokenizer: PreTrainedTokenizerFast | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """(random model, tokenizer) of `model_type`, eval mode, weights fixed by `seed`."""
    tok = tokenizer if tokenizer is not None else build_tiny_tokenizer(model_type)
    config = make_config(
        model_type, len(tok), size,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    return model.eval(), tok


def save_tiny_model(model_type: str, out_dir: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random `model_type` model and its tokenizer to `out_dir` (safetensors)."""
    out = Path(out_dir)
    model, tok = build_tiny_model(model_type, seed=seed)
    model.save_pretrained(out, safe_serialization=True)
    save_tokenizer(tok, out)
    return out


def tiny_world_lm(
    texts: Sequence[str] = TINY_TEXTS,
    *,
    model_type: str = "gpt2",
    size: ModelSize = TINY_LM_SIZE,
    epochs: int = 150,
    seed: int = 0,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """A tiny `model_type` LM trained to memorise `texts` (a few seconds on CPU), in eval mode."""
    tok = build_tiny_tokenizer(model_type, texts)
    model, tok = build_tiny_model(model_type, size=size, seed=seed, tokenizer=tok)
    settings = TrainSettings(lr=1e-2, warmup_steps=20, batch_size=16, epochs=epochs, seed=seed, log_every=10**9)
    train_causal_lm(model, tok, texts, settings)
    return model, tok
