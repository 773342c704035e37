"""The training loop: schedule shape, bucketed batches, determinism, stopping rules."""

from __future__ import annotations

import pytest
import torch

from core.models.tiny import TINY_TEXTS, build_tiny_model
from core.models.training import (
    TrainSettings,
    cooldown_lr,
    length_bucketed_batches,
    lr_factor,
    train_causal_lm,
)


def test_lr_factor_warmup_then_cosine() -> None:
    values = [lr_factor(s, 10, 110, 0.1) for s in range(110)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0) and values[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))  # non-increasing after warmup


def test_bucketed_batches_cover_each_index_once() -> None:
    lengths = [i % 17 for i in range(1000)]
    batches = length_bucketed_batches(lengths, 32, torch.Generator().manual_seed(0), bucket=4)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000)) and max(len(b) for b in batches) == 32


def _train(seed: int, **kw) -> tuple[torch.nn.Module, object]:
    model, tok = build_tiny_model("gpt2", seed=seed)
    settings = TrainSettings(lr=1e-2, warmup_steps=5, batch_size=8, epochs=2, seed=seed, log_every=2, **kw)
    return model, train_causal_lm(model, tok, TINY_TEXTS, settings)


def test_same_seed_same_weights_and_loss_goes_down() -> None:
    (a, log_a), (b, _), (c, _) = _train(0), _train(0), _train(1)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert not torch.equal(a.transformer.wte.weight, c.transformer.wte.weight)
    assert log_a.steps == log_a.planned_steps == 6 and log_a.stop_reason == "epochs" and not a.training
    assert log_a.loss_curve[-1]["loss"] < log_a.loss_curve[0]["loss"]


def test_callback_can_stop_training() -> None:
    model, tok = build_tiny_model("llama")
    calls = []
    settings = TrainSettings(batch_size=8, epochs=5, eval_every=2, log_every=100)
    out = train_causal_lm(model, tok, TINY_TEXTS, settings, callback=lambda s: calls.append(s) or {"m": len(calls)},
                          stop_when=lambda m: m["m"] >= 2)
    assert out.stop_reason == "target" and out.steps == 4 and [e["m"] for e in out.evals] == [1, 2]


def test_time_budget_stops_training() -> None:
    model, tok = build_tiny_model("gpt2")
    out = train_causal_lm(model, tok, TINY_TEXTS, TrainSettings(batch_size=8, epochs=50, time_budget_s=0.0))
    assert out.stop_reason == "time_budget" and out.steps == 1


def test_cooldown_lr_decays_linearly_to_the_floor() -> None:
    assert cooldown_lr(1.0, 0.8, 0.1, elapsed=90.0, start=90.0, budget=100.0) == pytest.approx(0.8)
    assert cooldown_lr(1.0, 0.8, 0.1, elapsed=95.0, start=90.0, budget=100.0) == pytest.approx(0.45)
    assert cooldown_lr(1.0, 0.8, 0.1, elapsed=120.0, start=90.0, budget=100.0) == pytest.approx(0.1)
    assert cooldown_lr(0.2, 0.8, 0.1, elapsed=91.0, start=90.0, budget=100.0) == pytest.approx(0.2)  # never above schedule
