"""Teacher-forced logits with the output layer run only at the positions that predict answer tokens.

`predicting_logits` must equal the full forward's logits at those positions for every supported
architecture and padding side, run the head at exactly those rows, and fall back to the whole model
when something is hooked on the model's own forward (in-context editors, SERAC) so that hook still acts.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.eval.evaluate import EvalSettings, compute_pre_edit, evaluate_requests
from core.eval.scoring import answer_batches, plain_head, predicting_logits
from core.models.tiny import build_tiny_model
from core.types import EditRequest, Probe

torch.set_num_threads(2)

PROMPTS = ["Alice Brown works as a", "Clara Voss lives in", "The city of", "Erin Page is a"]
ANSWERS = ["painter", "Oslo and Riga", "Turin", "judge in Varna"]


def _full(model, batch) -> torch.Tensor:
    with torch.no_grad():
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                    position_ids=batch.position_ids, use_cache=False)  # fmt: skip
    return out.logits[:, :-1][batch.is_label[:, 1:]]


@pytest.mark.parametrize("model_type", ["gpt2", "gptj", "llama", "mistral", "qwen2"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_equals_full_forward(model_type, side):
    model, tok = build_tiny_model(model_type, seed=1)
    tok.padding_side = side
    assert plain_head(model) is model.get_output_embeddings()
    for batch in answer_batches(tok, PROMPTS, ANSWERS, batch_size=3):
        with torch.no_grad():
            got = predicting_logits(model, batch, torch.device("cpu"))
        want = _full(model, batch)
        assert got.shape == want.shape == (int(batch.is_label.sum()), model.config.vocab_size)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_head_runs_at_the_predicting_positions_only():
    model, tok = build_tiny_model("gpt2", seed=1)
    rows: list[int] = []
    handle = model.get_output_embeddings().register_forward_hook(lambda _m, a, _o: rows.append(a[0].shape[0]))
    try:
        batches = answer_batches(tok, PROMPTS, ANSWERS, batch_size=4)
        with torch.no_grad():
            predicting_logits(model, batches[0], torch.device("cpu"))
    finally:
        handle.remove()
    assert rows == [int(batches[0].is_label.sum())]  # not B x T
    assert rows[0] < batches[0].input_ids.numel()


def test_a_hook_on_the_model_forces_the_whole_forward():
    """A post-hook on the model rewrites logits (as SERAC's router does); the picked logits must show it."""
    model, tok = build_tiny_model("llama", seed=1)
    batch = answer_batches(tok, PROMPTS, ANSWERS, batch_size=4)[0]

    seen = []

    def shift(_m, _a, kwargs, out):
        seen.append(kwargs["input_ids"].shape)
        out.logits[..., 0] += 100.0
        return out

    handle = model.register_forward_hook(shift, with_kwargs=True)
    try:
        assert plain_head(model) is None
        with torch.no_grad():
            got = predicting_logits(model, batch, torch.device("cpu"))
    finally:
        handle.remove()
    assert plain_head(model) is model.get_output_embeddings()
    assert bool((got.argmax(-1) == 0).all())
    assert seen == [batch.input_ids.shape]  # every token, the last answer token included (SERAC reads it)


def test_no_plain_head_for_wrappers_and_base_models():
    model, _ = build_tiny_model("gpt2", seed=1)

    class Wrapper(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

    assert plain_head(Wrapper(model)) is None
    assert plain_head(model.base_model) is None  # no output layer of its own


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_evaluation_metrics_equal_on_both_paths(model_type):
    """`evaluate_requests` (reliability, generalization, portability, locality KL and argmax) gives the same
    numbers with the output layer at the scored positions and with the whole forward (forced by a no-op
    hook on the model)."""
    model, tok = build_tiny_model(model_type, seed=2)
    requests = [
        EditRequest(case_id=f"c{i}", prompt=p, subject=p.split(" ")[0], target_new=a,
                    rephrases=(f"Indeed {p}",), portability={"Reasoning": (Probe(f"So {p}", a),)},
                    locality={"Relation_Specificity": (Probe(PROMPTS[(i + 1) % 4], ANSWERS[(i + 1) % 4]),)})
        for i, (p, a) in enumerate(zip(PROMPTS, ANSWERS, strict=True))
    ]  # fmt: skip
    settings = EvalSettings(batch_size=3)

    def run():
        pre = compute_pre_edit(model, tok, requests, settings)
        return evaluate_requests(model, tok, requests, pre=pre, timing="t", settings=settings)

    fast = run()
    handle = model.register_forward_pre_hook(lambda _m, _a: None)
    try:
        full = run()
    finally:
        handle.remove()
    assert [[m.name for m in ms] for ms in fast] == [[m.name for m in ms] for ms in full]
    for a, b in zip(fast, full, strict=True):
        for ma, mb in zip(a, b, strict=True):
            assert ma.value == pytest.approx(mb.value, abs=1e-5), ma.name
