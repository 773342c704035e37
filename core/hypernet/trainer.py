"""Meta-training of a MEND editor (MEND §3.2, Alg. 1, Eq. 4) on plain sequences of training triples.

One training example is a triple (MEND's z_edit, x_equiv, x_loc): the edit (prompt, target), an
equivalence input (a rephrase asked for the same target) and an unrelated locality input (prompt and
answer); `core.hypernet.examples` builds them from `EditRequest`s (`loc_source`). Each step, for a batch
of examples edited together:

1. the fine-tuning gradient of the edit NLL (teacher-forced, target tokens only, encoded by
   `core.editors.base.encode_prompt_target`) is captured as rank-one factors in one forward/backward;
2. the editor turns them into edited weights W' (differentiable in the editor's parameters);
3. L_edit = NLL of the target on the equivalence input under W' (`edit_loss_on`), and
   L_loc = KL(p_W(. | x_loc) || p_W'(. | x_loc)) averaged over the locality input's real tokens; both run
   in ONE `torch.func.functional_call` forward on the concatenated batch;
4. L = c_edit * L_edit + c_loc * L_loc (Eq. 4) is backpropagated into the editor only (the base model
   is frozen); Adam steps every `accumulate` batches (`lr` on the MLPs, `lr_lr` on the alphas, one
   optimiser, two groups) after global-norm clipping.

Validation (every `val_every` steps, at step 0 and at the end) edits each validation example alone with
the editor in eval mode and reports token accuracies on the prompt (edit_acc) and rephrase (equiv_acc),
pre/post argmax agreement on the locality answer (loc_acc) and the losses. The best editor by
`early_stop_key` is kept and written, and training stops after `patience` steps without improvement.
Fixes against EasyEdit (easyedit-notes §10.9): early stopping is live, only improvements are saved, the
validation set is never trained on, and the alphas are stepped once. Same seed, same numbers.
InstructEdit reuses this trainer with instruction-prefixed triples.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from core.editors.base import EncodedBatch, encode_prompt_target, model_device, train_only
from core.editors.ft import target_new_loss
from core.editors.mend import edit_factors, model_inputs
from core.hypernet.checkpoint import save_editor
from core.hypernet.config import MENDTrainConfig
from core.hypernet.examples import MetaExample, as_examples
from core.hypernet.mend import MENDEditor, build_editor
from core.types import EditRequest

log = logging.getLogger(__name__)


def kl_on_tokens(pre: torch.Tensor, post: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over positions with mask=1 of KL(softmax(pre) || softmax(post)); logits (B, T, V)."""
    lp_pre, lp_post = F.log_softmax(pre.float(), -1), F.log_softmax(post.float(), -1)
    kl = (lp_pre.exp() * (lp_pre - lp_post)).sum(-1)  # (B, T)
    return (kl * mask).sum() / mask.sum()


def token_acc(logits: torch.Tensor, batch: EncodedBatch) -> torch.Tensor:
    """(B,) teacher-forced token accuracy of each row's target tokens."""
    hit = (logits[:, :-1].argmax(-1) == batch.input_ids[:, 1:]) & batch.target_mask[:, 1:]
    return hit.sum(1) / batch.target_mask[:, 1:].sum(1)


def meta_losses(
    model: nn.Module, tok, editor: MENDEditor, examples: Sequence[MetaExample], cfg: MENDTrainConfig
) -> dict[str, torch.Tensor]:
    """MEND Eq. 4 for `examples` edited together: total, edit and loc losses (+ accuracies, detached)."""
    factors = edit_factors(model, editor, tok, [e.prompt for e in examples], [e.target for e in examples])
    new = editor.new_weights(dict(model.named_parameters()), factors)
    equiv = {"rephrase": [e.equiv_prompt for e in examples], "prompt": [e.prompt for e in examples]}
    prompts = equiv["rephrase"] + equiv["prompt"] if cfg.edit_loss_on == "both" else equiv[cfg.edit_loss_on]
    targets = [e.target for e in examples] * (len(prompts) // len(examples))
    batch = encode_prompt_target(
        tok, prompts + [e.loc_prompt for e in examples], targets + [e.loc_answer for e in examples],
        model_device(model),
    )  # fmt: skip
    post = functional_call(model, new, args=(), kwargs=model_inputs(batch)).logits  # (B, T, V)
    edit_rows, loc_rows = slice(0, len(prompts)), slice(len(prompts), None)
    edit_batch, loc_batch = _rows(batch, edit_rows), _rows(batch, loc_rows)
    with torch.no_grad():
        pre_loc = model(**model_inputs(loc_batch)).logits
    l_edit = target_new_loss(post[edit_rows], edit_batch)
    l_loc = kl_on_tokens(pre_loc, post[loc_rows], loc_batch.attention_mask)
    with torch.no_grad():
        loc_ans = loc_batch.target_mask[:, 1:]
        agree = (pre_loc[:, :-1].argmax(-1) == post[loc_rows, :-1].argmax(-1)) & loc_ans
        edit_acc = token_acc(post[edit_rows], edit_batch).mean()
        loc_acc = (agree.sum(1) / loc_ans.sum(1)).mean()
    total = cfg.c_edit * l_edit + cfg.c_loc * l_loc
    return {
        "loss_total": total,
        "loss_edit": l_edit,
        "loss_loc": l_loc,
        "edit_acc": edit_acc,
        "loc_acc": loc_acc,
    }


def _rows(batch: EncodedBatch, rows: slice) -> EncodedBatch:
    return EncodedBatch(batch.input_ids[rows], batch.attention_mask[rows], batch.target_mask[rows])


_EDIT_ROWS = {
    "prompt": slice(0, 1),
    "rephrase": slice(1, 2),
    "both": slice(0, 2),
}  # rows of L_edit in validate


@torch.no_grad()
def validate(
    model: nn.Module, tok, editor: MENDEditor, examples: Sequence[MetaExample], cfg: MENDTrainConfig
) -> dict[str, float]:
    """Mean metrics of single edits of each example (editor in eval mode; statistics frozen)."""
    was_training = editor.training
    editor.eval()
    dev = model_device(model)
    sums: dict[str, float] = {}
    try:
        for e in examples:
            factors = edit_factors(model, editor, tok, [e.prompt], [e.target])
            new = editor.new_weights(dict(model.named_parameters()), factors)
            batch = encode_prompt_target(
                tok, [e.prompt, e.equiv_prompt, e.loc_prompt], [e.target, e.target, e.loc_answer], dev
            )  # rows: edit prompt, equivalence prompt, locality
            post = functional_call(model, new, args=(), kwargs=model_inputs(batch)).logits
            pre = model(**model_inputs(batch)).logits
            acc = token_acc(post, batch)
            loc_ans = batch.target_mask[2, 1:]
            agree = (pre[2, :-1].argmax(-1) == post[2, :-1].argmax(-1))[loc_ans].float().mean()
            rows = _EDIT_ROWS[cfg.edit_loss_on]
            l_edit = target_new_loss(post[rows], _rows(batch, rows))
            l_loc = kl_on_tokens(pre[2:], post[2:], batch.attention_mask[2:])
            values = {
                "edit_acc": acc[0].item(), "equiv_acc": acc[1].item(), "loc_acc": agree.item(),
                "loss_edit": l_edit.item(), "loss_loc": l_loc.item(),
                "loss_total": (cfg.c_edit * l_edit + cfg.c_loc * l_loc).item(),
            }  # fmt: skip
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
    finally:
        editor.train(was_training)
    return {k: v / len(examples) for k, v in sums.items()}


@dataclass
class TrainResult:
    """The best editor (eval mode), its validation metrics and step, and the logged curve."""

    editor: MENDEditor
    best: dict[str, float]
    best_step: int
    history: list[dict[str, Any]]
    stopped: str  # "max_steps" or "early_stop"


def _better(key: str, new: float, old: float | None) -> bool:
    return old is None or (new < old if key.startswith("loss") else new > old)


def train_editor(
    model: nn.Module,
    tok,
    train: Sequence[MetaExample | EditRequest],
    val: Sequence[MetaExample | EditRequest],
    cfg: MENDTrainConfig,
    *,
    out_path: str | Path | None = None,
    info: dict[str, Any] | None = None,
    on_validation: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Meta-train a MEND editor for `model` on `train` triples; validate on the first `val_size` of `val`.

    The best editor is written to `out_path` (atomically, editor only) at every improvement. The model's
    weights, flags and mode are unchanged on return.
    """
    train_ex, val_ex = as_examples(train, cfg.loc_source), as_examples(val, cfg.loc_source)[: cfg.val_size]
    if not train_ex or not val_ex:
        raise ValueError(f"need training and validation examples, got {len(train_ex)} and {len(val_ex)}")
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    editor = build_editor(cfg, model, seed=cfg.seed).to(model_device(model)).train()
    opt = torch.optim.Adam([{"params": editor.network_parameters(), "lr": cfg.lr},
                            {"params": [editor.edit_lrs], "lr": cfg.lr_lr}])  # fmt: skip
    history: list[dict[str, Any]] = []
    best, best_step, best_state, stopped = None, 0, None, "max_steps"
    order: list[int] = []
    running: dict[str, float] = {}
    start = time.perf_counter()

    def validate_and_keep(step: int) -> bool:
        nonlocal best, best_step, best_state
        metrics = validate(model, tok, editor, val_ex, cfg)
        row = {"step": step, "seconds": round(time.perf_counter() - start, 2),
               **{f"train/{k}": v / max(1, running.get("n", 0)) for k, v in running.items() if k != "n"},
               **{f"val/{k}": v for k, v in metrics.items()}}  # fmt: skip
        running.clear()
        history.append(row)
        log.info("MEND step %d: %s", step, {k: round(v, 4) for k, v in row.items() if isinstance(v, float)})
        improved = _better(
            cfg.early_stop_key,
            metrics[cfg.early_stop_key],
            None if best is None else best[cfg.early_stop_key],
        )
        if improved:
            best, best_step, best_state = metrics, step, copy.deepcopy(editor.state_dict())
            if out_path is not None:
                save_editor(editor, out_path, {**(info or {}), "step": step, "val_metrics": metrics})
        if on_validation is not None:
            on_validation(row)
        return improved

    with train_only(model, []):
        validate_and_keep(0)
        for step in range(1, cfg.max_steps + 1):
            if len(order) < cfg.batch_size:
                fresh = list(range(len(train_ex)))
                rng.shuffle(fresh)
                order += fresh
            examples = [train_ex[i] for i in order[: cfg.batch_size]]
            del order[: cfg.batch_size]
            losses = meta_losses(model, tok, editor, examples, cfg)
            (losses["loss_total"] / cfg.accumulate).backward()
            for k, v in losses.items():
                running[k] = running.get(k, 0.0) + v.item()
            running["n"] = running.get("n", 0) + 1
            if step % cfg.accumulate == 0:
                torch.nn.utils.clip_grad_norm_(editor.parameters(), cfg.grad_clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
            if step % cfg.val_every == 0 or step == cfg.max_steps:
                validate_and_keep(step)
                if step - best_step >= cfg.patience:
                    stopped = "early_stop"
                    break
    assert best is not None and best_state is not None
    editor.load_state_dict(best_state)
    return TrainResult(editor=editor.eval(), best=best, best_step=best_step, history=history, stopped=stopped)
