"""A small causal-LM training loop: whole-sequence LM loss, AdamW, linear warmup + cosine decay.

Used to pretrain the world LMs (`core.models.pretrain`) and the tiny fact-learning models of the
tests (`core.models.tiny.tiny_world_lm`). Each text is one example: `tokenizer(text)` (BOS when the
tokenizer's policy adds it) followed by EOS, right-padded within a batch of texts of similar length
(length-bucketed shuffling), loss on every real token.
The schedule is step-based (the planned steps of `epochs` epochs), so the same seed, data and
thread count give the same weights; the callback only stops the loop early. Only when a run nears
its time budget (a slow or shared machine) does wall time enter: in the last `cooldown_frac` of the
budget the lr decays linearly to its floor, so a cut-short run still ends annealed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """Optimiser, schedule and stopping settings of `train_causal_lm`."""

    lr: float = 3e-3
    min_lr_ratio: float = 0.1  # cosine floor as a fraction of lr
    warmup_steps: int = 100
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    batch_size: int = 64
    epochs: int = 20
    time_budget_s: float | None = None  # wall-clock stop (breaks bit-reproducibility when it fires)
    cooldown_frac: float = 0.15  # last fraction of the time budget: lr decays linearly to its floor
    eval_every: int = 0  # steps between callback calls; 0 = never
    log_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError("batch_size and epochs must be >= 1")
        if not 0.0 <= self.cooldown_frac <= 1.0:
            raise ValueError(f"cooldown_frac {self.cooldown_frac} not in [0, 1]")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio {self.min_lr_ratio} not in [0, 1]")


@dataclass
class TrainLog:
    """What happened: loss curve rows {step, epoch, loss, lr, elapsed_s}, evals, why it stopped."""

    loss_curve: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    planned_steps: int = 0
    seconds: float = 0.0
    stop_reason: str = "epochs"


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier of the base lr at `step`: linear warmup to 1, then cosine down to `min_ratio`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def cooldown_lr(lr: float, lr_at_start: float, floor: float, elapsed: float, start: float, budget: float) -> float:
    """The lr during the time-budget cooldown: linear from `lr_at_start` (at `start` s) to `floor` at `budget` s."""
    frac = min(1.0, max(0.0, (elapsed - start) / max(1e-9, budget - start)))
    return min(lr, lr_at_start + (floor - lr_at_start) * frac)


def tokenize_corpus(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each text plus EOS (BOS first when the tokenizer adds it), cut to `max_length`."""
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has no eos token")
    ids = tokenizer(list(texts))["input_ids"]
    rows = [row + [tokenizer.eos_token_id] for row in ids]
    n_long = sum(len(r) > max_length for r in rows)
    if n_long:
        log.warning("%d of %d texts cut to %d tokens", n_long, len(rows), max_length)
    return [r[:max_length] for r in rows]


def length_bucketed_batches(lengths: Sequence[int], batch_size: int, gen: torch.Generator,
                            bucket: int = 32) -> list[list[int]]:
    """One epoch of batches: shuffle, sort each run of `bucket` batches by length, shuffle the batches.

    Batches hold texts of similar length, so little compute is spent on padding.
    """
    order = torch.randperm(len(lengths), generator=gen).tolist()
    chunk = batch_size * bucket
    batches = []
    for c in range(0, len(order), chunk):
        idx = sorted(order[c : c + chunk], key=lambda i: lengths[i])
        batches += [idx[j : j + batch_size] for j in range(0, len(idx), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


def _optimizer(model: PreTrainedModel, settings: TrainSettings) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": settings.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=settings.lr, betas=settings.betas)


@dataclass
class _Clock:
    """The lr of each step (warmup + cosine over `total` steps, then the time-budget cooldown) and the time."""

    settings: TrainSettings
    total: int
    start: float = field(default_factory=time.perf_counter)
    cooldown: tuple[float, float] | None = None  # (start s, lr at start) once the cooldown began

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def out_of_time(self) -> bool:
        return self.settings.time_budget_s is not None and self.elapsed() > self.settings.time_budget_s

    def lr(self, step: int) -> float:
        s, budget = self.settings, self.settings.time_budget_s
        lr = s.lr * lr_factor(step, s.warmup_steps, self.total, s.min_lr_ratio)
        if budget is None:
            return lr
        now = self.elapsed()
        if self.cooldown is None and now >= budget * (1.0 - s.cooldown_frac):
            self.cooldown = (now, lr)
            log.info("time budget nearly spent at step %d: lr cooldown from %.2e", step, lr)
        if self.cooldown is None:
            return lr
        return cooldown_lr(lr, self.cooldown[1], s.lr * s.min_lr_ratio, now, self.cooldown[0], budget)


def _collate(rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    labels = input_ids.masked_fill(mask == 0, -100)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def train_causal_lm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    settings: TrainSettings,
    *,
    device: str | torch.device = "cpu",
    callback: Callable[[int], dict[str, float] | None] | None = None,
    stop_when: Callable[[dict[str, float]], bool] | None = None,
) -> TrainLog:
    """Train `model` in place on `texts`; returns the log. The model is left in eval mode.

    Every `settings.eval_every` steps `callback(step)` may return metrics (stored in `log.evals`);
    training stops when `stop_when(metrics)` is true, when the epochs end, or past the time budget.
    """
    data = tokenize_corpus(tokenizer, texts, max_length=model.config.max_position_embeddings)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    lengths = [len(r) for r in data]
    gen = torch.Generator().manual_seed(settings.seed)
    plan = [(epoch, idx) for epoch in range(settings.epochs)
            for idx in length_bucketed_batches(lengths, settings.batch_size, gen)]
    total = len(plan)
    opt = _optimizer(model, settings)
    out = TrainLog(planned_steps=total)
    model.to(device)
    model.train()
    clock = _Clock(settings, total)
    running, n_running, step = 0.0, 0, 0
    for epoch, idx in plan:
        rows = [data[i] for i in idx]
        batch = {k: v.to(device) for k, v in _collate(rows, pad_id).items()}
        lr = clock.lr(step)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        opt.step()
        step += 1
        running, n_running = running + loss.item(), n_running + 1
        elapsed = clock.elapsed()
        if step % settings.log_every == 0 or step == total:
            row = {"step": step, "epoch": epoch, "loss": running / n_running, "lr": lr, "elapsed_s": elapsed}
            out.loss_curve.append(row)
            log.info("step %d/%d epoch %d loss %.4f lr %.2e %.0fs", step, total, epoch, row["loss"], lr, elapsed)
            running, n_running = 0.0, 0
        if callback is not None and settings.eval_every and step % settings.eval_every == 0:
            model.eval()
            metrics = callback(step)
            model.train()
            if metrics is not None:
                out.evals.append({"step": step, "elapsed_s": clock.elapsed(), **metrics})
                if stop_when is not None and stop_when(metrics):
                    out.stop_reason = "target"
        if clock.out_of_time():
            out.stop_reason = "time_budget"
        if out.stop_reason != "epochs":
            break
    out.steps, out.seconds = step, clock.elapsed()
    model.eval()
    return out
