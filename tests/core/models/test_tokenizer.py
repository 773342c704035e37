"""Byte-level BPE: lossless on real English text (the WISE files), special tokens, BOS policy, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from core.models.tiny import TINY_TEXTS
from core.models.tokenizer import BOS, EOS, PAD, save_tokenizer, set_add_bos, train_tokenizer

WISE_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "wise"
WISE_FILES = sorted(WISE_DIR.glob("*/*.json"))


def _strings(obj: object) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(list(TINY_TEXTS) * 3, vocab_size=400)


@pytest.mark.skipif(not WISE_FILES, reason=f"real WISE files not found under {WISE_DIR}")
@pytest.mark.parametrize("path", WISE_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("add_bos", [False, True])
def test_lossless_on_real_wise_text(tok, path: Path, add_bos: bool) -> None:
    texts = _strings(json.loads(path.read_text(encoding="utf-8")))
    assert len(texts) > 100 and any(ord(c) > 127 for t in texts for c in t)  # non-ASCII is exercised
    t = set_add_bos(tok, add_bos)
    ids = t(texts)["input_ids"]
    decoded = t.batch_decode(ids, skip_special_tokens=True)
    bad = [s for s, d in zip(texts, decoded, strict=True) if s != d]
    assert not bad, f"{len(bad)} texts not round-tripped, first: {bad[0][:80]!r}"


def test_special_tokens_and_sizes(tok) -> None:
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == (PAD, BOS, EOS)
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert 259 < len(tok) <= 400
    assert tok.convert_ids_to_tokens(tok(" Oslo")["input_ids"]) == ["ĠOslo"]  # merges learned, leading space kept


def test_bos_policy(tok) -> None:
    assert tok("Oslo")["input_ids"][0] != tok.bos_token_id
    with_bos = set_add_bos(tok, True)
    ids = with_bos("Oslo")["input_ids"]
    assert ids[0] == with_bos.bos_token_id and ids[1:] == tok("Oslo")["input_ids"]
    assert with_bos("Oslo", add_special_tokens=False)["input_ids"] == ids[1:]
    offsets = with_bos("Alice Brown", return_offsets_mapping=True)["offset_mapping"]
    assert offsets[0] == (0, 0) and offsets[-1] == (6, 11)  # leading space trimmed from offsets


def test_deterministic_training() -> None:
    a = train_tokenizer(list(TINY_TEXTS), vocab_size=350)
    b = train_tokenizer(list(TINY_TEXTS), vocab_size=350)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()


def test_save_load_round_trip(tok, tmp_path: Path) -> None:
    t = set_add_bos(tok, True)
    save_tokenizer(t, tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "Zoë met Ōtsuka in Zürich — 東京."
    assert loaded(text)["input_ids"] == t(text)["input_ids"]
    assert loaded.decode(loaded(text)["input_ids"], skip_special_tokens=True) == text
    assert (loaded.pad_token_id, loaded.bos_token_id, loaded.eos_token_id) == (0, 1, 2)


def test_vocab_too_small_is_an_error() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["a"], vocab_size=100)
