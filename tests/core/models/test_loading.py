"""Every architecture round-trips save_pretrained -> load_model with its tokenizer policy applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import BertConfig

from core.models.arch import UnsupportedArchitectureError, get_arch
from core.models.inputs import encode_batch
from core.models.loading import apply_tokenizer_policy, load_model, resolve_dtype
from core.models.tiny import TINY_ARCHS, build_tiny_model, build_tiny_tokenizer

TEXTS = ["Alice Brown was born in", "The city where Hugo Marsh lives is", "Oslo"]


@pytest.mark.parametrize("model_type", TINY_ARCHS)
def test_round_trip_same_weights_and_eval_mode(tiny_dirs: dict[str, Path], model_type: str) -> None:
    path = tiny_dirs[model_type]
    assert (path / "model.safetensors").exists()
    model, tok = load_model(path)
    ref, _ = build_tiny_model(model_type)  # same seed -> same weights
    assert not model.training and model.dtype == torch.float32 and get_arch(model).model_type == model_type
    for (name, p), (_, q) in zip(model.state_dict().items(), ref.state_dict().items(), strict=True):
        torch.testing.assert_close(p, q, msg=name)
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    assert model.config.pad_token_id == tok.pad_token_id
    assert (tok("Oslo")["input_ids"][0] == tok.bos_token_id) is get_arch(model_type).tokenizer.add_bos


@pytest.mark.parametrize("model_type", TINY_ARCHS)
def test_left_padded_batch_matches_unpadded_last_token(tiny_dirs: dict[str, Path], model_type: str) -> None:
    model, tok = load_model(tiny_dirs[model_type])
    batch = encode_batch(tok, TEXTS)
    assert (batch["attention_mask"][:, -1] == 1).all()  # left padding: last token is real
    with torch.no_grad():
        batched = model(**batch).logits[:, -1]  # (B, V)
        for i, text in enumerate(TEXTS):
            alone = model(**encode_batch(tok, [text])).logits[0, -1]
            torch.testing.assert_close(batched[i], alone, rtol=1e-4, atol=1e-5)


def test_pad_token_defaults_to_eos(tmp_path: Path, tiny_dirs: dict[str, Path]) -> None:
    tok = build_tiny_tokenizer("llama")
    tok.pad_token = None
    tok.padding_side = "right"
    apply_tokenizer_policy(tok, get_arch("llama"))
    assert tok.pad_token == tok.eos_token and tok.padding_side == "left"


def test_dtype_and_device(tiny_dirs: dict[str, Path]) -> None:
    model, _ = load_model(tiny_dirs["llama"], dtype="bfloat16", device="cpu")
    assert model.dtype == torch.bfloat16 and model.device.type == "cpu"
    assert resolve_dtype(torch.float16) is torch.float16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("float8")


def test_unknown_model_type_fails_before_weights(tmp_path: Path) -> None:
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedArchitectureError, match="'bert'"):
        load_model(tmp_path)


def test_remote_code_is_opt_in(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    cfg = json.loads((tiny_dirs["gpt2"] / "config.json").read_text())
    cfg["model_type"] = "evilgpt"
    cfg["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_model(tmp_path)
