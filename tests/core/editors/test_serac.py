"""SERAC inference: routing alignment (left / right padding, BOS), KV-cached decoding, undo, archive checks.

Uses the in-code tiny archive (`load_archive("tiny-<arch>")`: a copy-trained counterfactual GPT-2 and an
all-in-scope head) and a "lexical" variant whose head maps hashed bag-of-words embeddings through a
scaled identity, so that exactly the rows whose text equals an edit descriptor are routed.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.editors import UndoError
from core.editors.serac import SERACHyperParams, apply_serac
from core.editors.serac.archive import ArchiveMismatchError, context_ids, load_archive, save_archive
from core.editors.serac.classifier import ScopeHead
from core.editors.serac.router import SeracRouter, find_router
from core.eval.scoring import greedy_generate, score_answers
from core.models.tiny import build_tiny_model
from core.types import EditRequest


def _req(i: int, prompt: str, target: str) -> EditRequest:
    return EditRequest(case_id=f"c{i}", prompt=prompt, subject=prompt.split(" ")[0], target_new=target)


def _lexical(arch: str, scale: float = 3.0):
    """The tiny archive with a head that keeps g = 1 only for identical texts (hashed bag of words)."""
    base = load_archive(f"tiny-{arch}")
    head = ScopeHead(64, 64, 64)
    with torch.no_grad():
        head.net[0].weight.copy_(torch.eye(64) * scale)
        head.net[0].bias.zero_()
        head.net[2].weight.copy_(torch.eye(64))
        head.net[2].bias.zero_()
    return dataclasses.replace(base, head=head.eval(), source=f"lexical-{arch}")


def _forward(model, tok, texts, side):
    enc = tok(texts, return_tensors="pt", padding=True, padding_side=side)
    pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            position_ids=pos,
            use_cache=False,
        ).logits, enc


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_routed_rows_get_cf_logits_of_context_plus_row(arch, side):
    model, tok = build_tiny_model(arch)
    archive = _lexical(arch)
    rows = ["Alice Brown was born in Riga", "Greta Holm works as a painter", "Hugo Marsh was born in"]
    base_logits, _ = _forward(model, tok, rows, side)
    router = SeracRouter(model, tok, archive, 0.5)
    router.push([_req(0, "Alice Brown was born in", "Riga")])
    logits, enc = _forward(model, tok, rows, side)
    assert router.n_routed == 1 and router.n_rows == 3
    mask = enc["attention_mask"].bool()
    # routed row 0: h's logits of context + row ids alone, at the row's real columns
    row_ids = tok(rows[0])["input_ids"]
    ctx = list(context_ids(tok, "Alice Brown was born in Riga"))
    with torch.no_grad():
        alone = archive.cf_model(input_ids=torch.tensor([ctx + row_ids])).logits[0, len(ctx) :]
    assert torch.allclose(logits[0][mask[0]], alone, atol=1e-5)
    # unrouted rows: the base model's logits, bit for bit
    assert torch.equal(logits[1:], base_logits[1:])
    router.remove()
    assert torch.equal(_forward(model, tok, rows, side)[0], base_logits)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_kv_cached_generation_routes_per_row(arch):
    model, tok = build_tiny_model(arch)
    prompts = ["Alice Brown was born in", "Greta Holm works as a"]
    plain = greedy_generate(model, tok, prompts, max_new_tokens=6)
    router = SeracRouter(model, tok, _lexical(arch), 0.5)
    router.push([_req(0, "Alice Brown was born", "in")])  # descriptor text == prompts[0]
    routed = greedy_generate(model, tok, prompts, max_new_tokens=6)
    assert routed[1] == plain[1]
    ids = list(context_ids(tok, "Alice Brown was born in")) + tok(prompts[0])["input_ids"]
    expected = []
    with torch.no_grad():
        for _ in range(6):  # full recompute, no cache: what the cached path must reproduce
            nxt = int(router.cf(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            expected.append(nxt)
            ids.append(nxt)
    assert list(routed[0].token_ids) == expected
    assert routed[0].token_ids != plain[0].token_ids


def test_cached_call_with_foreign_cache_fails():
    model, tok = build_tiny_model("gpt2")
    enc = tok(["Alice Brown was born in"], return_tensors="pt")
    with torch.no_grad():
        past = model(**enc, use_cache=True).past_key_values  # prefilled before the edit
    undo = apply_serac(
        model,
        tok,
        [_req(0, "Alice Brown was born in", "Riga")],
        SERACHyperParams(archive="tiny-gpt2", threshold=0.5),
    )
    with pytest.raises(RuntimeError, match="not prefilled"), torch.no_grad():
        model(input_ids=torch.tensor([[5]]), past_key_values=past, use_cache=True)
    undo()


def test_edit_makes_cf_answer_and_out_of_order_undo_fails():
    model, tok = build_tiny_model("gpt2")
    hp = SERACHyperParams(archive="tiny-gpt2", threshold=0.5)
    req = _req(0, "Hugo Marsh was born in", "Porto")
    (pre,) = score_answers(model, tok, [req.prompt], [req.target_new])
    first = apply_serac(model, tok, [req], hp)
    second = apply_serac(model, tok, [_req(1, "Erin Page works as a", "Lyon")], hp)
    router = find_router(model)
    assert len(router.memory) == 2
    with pytest.raises(UndoError, match="later edits first"):
        first()  # sequential edits unwind last first; the memory is left as it was
    assert len(router.memory) == 2
    second()
    (post,) = score_answers(model, tok, [req.prompt], [req.target_new])
    assert not torch.equal(pre.argmax_ids, pre.label_ids)
    assert torch.equal(post.argmax_ids, post.label_ids)
    router.remove()


def test_last_undo_leaves_model_unhooked():
    model, tok = build_tiny_model("llama")
    pre_hooks, hooks = len(model._forward_pre_hooks), len(model._forward_hooks)
    hp = SERACHyperParams(archive="tiny-llama", threshold=0.5)
    undos = [
        apply_serac(model, tok, [_req(i, "Clara Voss works as a", t)], hp)
        for i, t in enumerate(("poet", "pilot"))
    ]
    assert find_router(model) is not None and len(model._forward_hooks) == hooks + 1
    for u in reversed(undos):
        u()
    assert find_router(model) is None
    assert (len(model._forward_pre_hooks), len(model._forward_hooks)) == (pre_hooks, hooks)


def test_archive_for_another_tokenizer_is_refused():
    model, tok = build_tiny_model("llama")  # BOS policy differs from the gpt2 tiny tokenizer
    with pytest.raises(ArchiveMismatchError, match="tokenizer"):
        apply_serac(
            model,
            tok,
            [_req(0, "Alice Brown was born in", "Riga")],
            SERACHyperParams(archive="tiny-gpt2", threshold=0.5),
        )
    assert find_router(model) is None


def test_archive_round_trips_through_a_folder(tmp_path):
    model, tok = build_tiny_model("gpt2")
    archive = load_archive("tiny-gpt2")
    save_archive(tmp_path / "serac", archive, tok, {"note": "test"}, {"seed": 0})
    loaded = load_archive(str(tmp_path / "serac"))
    assert loaded is load_archive(str(tmp_path / "serac"))  # memoised on path + mtime
    for a, b in zip(archive.head.state_dict().values(), loaded.head.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    ids = torch.tensor([tok("Alice Brown was born in Riga")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(archive.cf_model(ids).logits, loaded.cf_model(ids).logits)
    assert loaded.tokenizer_fingerprint == archive.tokenizer_fingerprint
    undo = apply_serac(
        model,
        tok,
        [_req(0, "Alice Brown was born in", "Riga")],
        SERACHyperParams(archive=str(tmp_path / "serac"), threshold=0.5),
    )
    undo()
    with pytest.raises(FileNotFoundError, match="serac_train"):
        load_archive(str(tmp_path / "missing"))


@pytest.mark.parametrize("bad", [{"threshold": 1.0}, {"threshold": "0.5"}, {"archive": ""}])
def test_hparams_validation(bad):
    with pytest.raises(ValueError):
        SERACHyperParams(**{"archive": "tiny-gpt2", "threshold": 0.5, **bad})
