"""Byte-level BPE tokenizers trained in code (HF `tokenizers`), wrapped as `PreTrainedTokenizerFast`.

The alphabet holds all 256 byte symbols and there is no normaliser, so any text, in any script,
encodes and decodes back to itself (`decode(encode(t), skip_special_tokens=True) == t`). Words
carry their leading space (" Paris"), GPT-2 style. Special tokens: BOS, EOS (also the document
separator) and a separate PAD, so padding is never confused with a real end of text. With
`add_bos=True` (the LLaMA / Mistral policy) every encoding starts with BOS; otherwise (GPT-2) no
special token is added.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from core.io import write_json

BOS = "<|bos|>"
EOS = "<|endoftext|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = (PAD, BOS, EOS)  # ids 0, 1, 2


def _post_processor(tok: Tokenizer, add_bos: bool) -> processors.PostProcessor:
    byte_level = processors.ByteLevel(trim_offsets=True)
    if not add_bos:
        return byte_level
    bos_id = tok.token_to_id(BOS)
    template = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return processors.Sequence([byte_level, template])


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 2048,
    *,
    add_bos: bool = False,
    min_frequency: int = 2,
    model_max_length: int = 1024,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` and wrap it for `transformers`.

    Deterministic for the same `texts` (order included) and settings. `vocab_size` counts the 256
    byte symbols and the 3 special tokens; a small corpus may end with fewer merges.
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size {vocab_size} < {256 + len(SPECIAL_TOKENS)} (bytes + special tokens)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = _post_processor(tok, add_bos)
    return wrap_tokenizer(tok, model_max_length=model_max_length)


def wrap_tokenizer(tok: Tokenizer, *, model_max_length: int = 1024) -> PreTrainedTokenizerFast:
    """Wrap a raw `tokenizers.Tokenizer` holding BOS/EOS/PAD as a `PreTrainedTokenizerFast`."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        clean_up_tokenization_spaces=False,
        model_max_length=model_max_length,
        padding_side="left",
    )


def set_add_bos(tokenizer: PreTrainedTokenizerFast, add_bos: bool) -> PreTrainedTokenizerFast:
    """A copy of a tokenizer from `train_tokenizer` with the BOS policy switched."""
    raw = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    raw.post_processor = _post_processor(raw, add_bos)
    out = wrap_tokenizer(raw, model_max_length=tokenizer.model_max_length)
    out.padding_side = tokenizer.padding_side
    return out


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out_dir: str | Path) -> None:
    """`save_pretrained`, with `tokenizer_class` written as "PreTrainedTokenizerFast".

    transformers 5 writes its internal name "TokenizersBackend", which transformers 4.x cannot load;
    both versions load "PreTrainedTokenizerFast" into the same fast tokenizer.
    """
    tokenizer.save_pretrained(out_dir)
    path = Path(out_dir) / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    write_json(path, config)
    path.chmod(0o644)
