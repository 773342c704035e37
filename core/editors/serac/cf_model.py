"""SERAC's counterfactual model h(z_e, x): a small GPT-2 world LM with the base model's tokenizer.

Mitchell et al. 2022 (§3) use a smaller model than the base for h and fine-tune it to answer
x given the edit descriptor prepended; here h is a fresh GPT-2 (fewer layers than the world LMs)
1) pretrained on the world corpus with the base model's tokenizer (`pretrain_cf_lm`, the whole-sequence
   LM loss of `core.models.training`), so it knows the facts that portability and locality probes
   ask about, then
2) fine-tuned on [context_ids(z_e); x; y] sequences with the loss on the answer tokens y only
   (`finetune_cf`, the paper's in-scope NLL, -log p_psi(y | z_e, x) over in-scope pairs).
The sequence is exactly what the router feeds h at inference (`core.editors.serac.router`): the
edit text's ids, EOS, then the query row's ids as the tokenizer encodes `prompt + " " + answer`, with
the answer span located by character offsets (`core.eval.scoring.encode_answers`). Batches are
right-padded with position ids counted over real tokens; data order and init come from `seed`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from core.editors.serac.archive import context_ids
from core.editors.serac.data import CFExample
from core.eval.scoring import encode_answers
from core.models.configs import ModelSize, make_config
from core.models.training import TrainLog, TrainSettings, length_bucketed_batches, lr_factor, train_causal_lm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of context + row, and the answer tokens' index range [start, end)."""

    ids: tuple[int, ...]
    start: int
    end: int


def make_cf_model(tok, vocab_size: int, size: ModelSize, seed: int) -> PreTrainedModel:
    """A fresh GPT-2 of `size` over the tokenizer's ids (dropout 0), init fixed by `seed`."""
    config = make_config(
        "gpt2",
        vocab_size,
        size,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def pretrain_cf_lm(
    model: PreTrainedModel,
    tok,
    texts: Sequence[str],
    settings: TrainSettings,
    device: str | torch.device = "cpu",
) -> TrainLog:
    """Whole-sequence LM pretraining on `texts` (each text + EOS), in place."""
    return train_causal_lm(model, tok, texts, settings, device=device)


def encode_cf_examples(tok, examples: Sequence[CFExample]) -> list[EncodedExample]:
    """context_ids(edit text) + ids of `prompt + " " + answer`, answer span shifted past the context."""
    rows = encode_answers(tok, [e.prompt for e in examples], [e.answer for e in examples])
    contexts: dict[str, tuple[int, ...]] = {}
    out = []
    for e, row in zip(examples, rows, strict=True):
        ctx = contexts.setdefault(e.edit_text, context_ids(tok, e.edit_text))
        out.append(EncodedExample((*ctx, *row.input_ids), len(ctx) + row.start, len(ctx) + row.end))
    return out


def collate(encs: Sequence[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask, position_ids and labels (-100 off the answer)."""
    width = max(len(e.ids) for e in encs)
    ids = torch.full((len(encs), width), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(encs), width), dtype=torch.long)
    labels = torch.full((len(encs), width), -100, dtype=torch.long)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = torch.tensor(e.ids)
        mask[i, : len(e.ids)] = 1
        labels[i, e.start : e.end] = ids[i, e.start : e.end]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "labels": labels}


def finetune_cf(
    model: PreTrainedModel,
    tok,
    encs: Sequence[EncodedExample],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Answer-only NLL fine-tuning (AdamW, 5% warmup + cosine to 0.1 lr); returns the mean loss per epoch."""
    if not encs:
        raise ValueError("no counterfactual-model examples")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    gen = torch.Generator().manual_seed(seed)
    plan = [
        b for _ in range(epochs) for b in length_bucketed_batches([len(e.ids) for e in encs], batch_size, gen)
    ]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    warmup, per_epoch, losses, running = max(1, len(plan) // 20), len(plan) // max(1, epochs), [], []
    model.to(device)
    model.train()
    for step, idx in enumerate(plan):
        for g in opt.param_groups:
            g["lr"] = lr * lr_factor(step, warmup, len(plan), 0.1)
        batch = {k: v.to(device) for k, v in collate([encs[i] for i in idx], pad).items()}
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(loss.item())
        if (step + 1) % per_epoch == 0 or step + 1 == len(plan):
            losses.append(sum(running) / len(running))
            log.info("cf fine-tune step %d/%d loss %.4f", step + 1, len(plan), losses[-1])
            running = []
    model.eval()
    return losses


@torch.no_grad()
def cf_token_accuracy(
    model: PreTrainedModel,
    tok,
    encs: Sequence[EncodedExample],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> float:
    """Mean over examples of the teacher-forced token accuracy of the answer (EasyEdit `rewrite_acc`)."""
    if not encs:
        return float("nan")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    accs = []
    was_training = model.training
    model.eval()
    for k in range(0, len(encs), batch_size):
        batch = {key: v.to(device) for key, v in collate(encs[k : k + batch_size], pad).items()}
        labels = batch.pop("labels")
        pred = model(**batch).logits[:, :-1].argmax(-1)  # (B, T-1) predicts tokens 1..T-1
        gold, on = labels[:, 1:], labels[:, 1:] != -100
        accs += (((pred == gold) & on).sum(-1) / on.sum(-1)).tolist()
    model.train(was_training)
    return sum(accs) / len(accs)
