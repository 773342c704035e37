"""FT-L and FT-M: constrained fine-tuning of one or more MLP projection modules.

FT-L is the ROME paper's "FT+L" baseline (Meng et al. 2022, §3 / App. baselines) as EasyEdit's
`models/ft/ft_main.py` implements it (easyedit-notes §4, objective `prompt_last`): run the prompt,
take the log-softmax at the LAST prompt position only, and minimise
    L = -(1/|y|) * sum_{y_j in target} log p(y_j | prompt)        (all target ids at that one position),
then clamp every trained weight to W0 +- eps (the L-inf constraint) after each step.
FT-M (KnowEdit §4.1; objective `target_new`) minimises the masked cross-entropy of the target tokens of
`prompt + " " + target` under teacher forcing (prompt tokens masked), averaged over all target tokens
of the batch, like EasyEdit's `CrossEntropyLoss(ignore_index=-100)`.

Only the parameters of the named modules (`rewrite_module_tmp.format(layer)`: weight and bias when
present) are trained, with Adam(lr, weight_decay). There are `num_steps` epochs over the requests in
chunks of `batch_size`; a chunk whose loss is below `early_stop_loss` is not stepped, and the epoch
loop stops once the size-weighted epoch mean is below it (EasyEdit uses 1e-2 for both).
Fixes against the reference: `batch_size` here chunks the requests given to one `edit` call and is
independent of the protocol's edit batch (EasyEdit's `batch_size == 1` assertion clash, notes §10.7);
no global state; the edit runs in eval mode (no dropout), so it is deterministic; padding is handled
by mask-derived positions for either padding side; target tokens come from one tokenization.
Speed (`core.editors.partial`): the blocks below the lowest trained one run once per edit, each step runs
the LM head only at the scored positions (FT-L: one per request), and rows stop at the last scored token.
`prompt_last_loss` / `target_new_loss` on full logits stay the definitions (MEND and LoRA train with the
latter); tests check that the fast path computes the same loss.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from core.editors.base import (
    EncodedBatch,
    Undo,
    model_device,
    module_parameter_names,
    resolve_module_name,
    snapshot_parameters,
    train_only,
)
from core.editors.partial import (
    ScoredBatch,
    bottom_input,
    first_block_of,
    scored_batch,
    scored_logprobs,
    weighted_nll,
)
from core.eval.scoring import encode_answers
from core.types import EditRequest

log = logging.getLogger(__name__)

Objective = Literal["prompt_last", "target_new"]


def _check_number(name: str, value: object, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r} (write floats as 5.0e-4 in YAML)")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class FTHyperParams:
    """Hparams of FT-L (`objective="prompt_last"`) and FT-M (`objective="target_new"`).

    `rewrite_module_tmp=None` takes the MLP output projection of the model's arch spec.
    `norm_constraint=None` disables the L-inf clamp.
    """

    objective: Objective
    layers: tuple[int, ...]
    rewrite_module_tmp: str | None
    lr: float
    num_steps: int
    weight_decay: float
    norm_constraint: float | None
    batch_size: int
    early_stop_loss: float

    def __post_init__(self) -> None:
        if self.objective not in ("prompt_last", "target_new"):
            raise ValueError(f"objective must be 'prompt_last' or 'target_new', got {self.objective!r}")
        if not isinstance(self.layers, tuple) or not self.layers:
            raise ValueError(f"layers must be a non-empty tuple of ints, got {self.layers!r}")
        if any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in self.layers):
            raise ValueError(f"layers must be non-negative ints, got {self.layers!r}")
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"layers repeat: {self.layers!r}")
        if self.rewrite_module_tmp is not None and "{}" not in self.rewrite_module_tmp:
            raise ValueError(f"rewrite_module_tmp needs a '{{}}' layer slot, got {self.rewrite_module_tmp!r}")
        _check_number("lr", self.lr, positive=True)
        _check_number("weight_decay", self.weight_decay)
        _check_number("early_stop_loss", self.early_stop_loss)
        if self.norm_constraint is not None:
            _check_number("norm_constraint", self.norm_constraint, positive=True)
        for name in ("num_steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def prompt_last_loss(logits: torch.Tensor, batch: EncodedBatch) -> torch.Tensor:
    """FT-L loss: mean over rows of -(1/|y|) sum_j log p(y_j) read at the last prompt position."""
    first_target = batch.target_mask.int().argmax(dim=1)  # (B,) first target token of each row
    last_prompt = first_target - 1
    rows = torch.arange(logits.shape[0], device=logits.device)
    if (last_prompt < 0).any() or not batch.attention_mask[rows, last_prompt.clamp(min=0)].bool().all():
        raise ValueError("prompt_last needs at least one prompt token before the target")
    logp = torch.log_softmax(logits[rows, last_prompt].float(), dim=-1)  # (B, V)
    ids = batch.input_ids.masked_fill(~batch.target_mask, 0)  # (B, T) target ids, 0 elsewhere
    picked = logp.gather(1, ids) * batch.target_mask  # (B, T) log p(y_j) at the single position
    return -(picked.sum(1) / batch.target_mask.sum(1)).mean()


def target_new_loss(logits: torch.Tensor, batch: EncodedBatch) -> torch.Tensor:
    """FT-M loss: teacher-forced cross-entropy over all target tokens of the batch (prompt masked)."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V) predicts tokens 1..T-1
    labels = batch.input_ids[:, 1:]
    mask = batch.target_mask[:, 1:]
    nll = -logp.gather(2, labels.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return (nll * mask).sum() / mask.sum()


_LOSSES = {"prompt_last": prompt_last_loss, "target_new": target_new_loss}  # the definitions, on full logits


def ft_scored_batch(tok, requests: Sequence[EditRequest], objective: Objective, device) -> ScoredBatch:
    """The FT loss of `requests` as a `core.editors.partial.ScoredBatch`: `weighted_nll` of it equals
    `prompt_last_loss` / `target_new_loss` on the full teacher-forced batch (tests/core/editors/test_ft.py).

    prompt_last: one scored position per row (its last prompt token), every target id there with weight
    1/(|y| B), and the row ends at that token. target_new: the positions predicting each target token,
    weight 1/(total target tokens); the row ends before its last target token (whose output is unused).
    """
    encs = encode_answers(tok, [r.prompt for r in requests], [r.target_new for r in requests])
    rows, scored = [], []
    total = sum(e.end - e.start for e in encs)
    for e in encs:
        ids = list(e.input_ids)
        if objective == "prompt_last":  # encode_answers guarantees a token before the target (e.start >= 1)
            n_y = e.end - e.start
            scored.append([(e.start - 1, ids[t], 1.0 / (n_y * len(requests))) for t in range(e.start, e.end)])
        else:
            scored.append([(t - 1, ids[t], 1.0 / total) for t in range(e.start, e.end)])
        rows.append(ids)
    return scored_batch(tok, rows, scored, device)


def ft_parameter_names(model: nn.Module, hp: FTHyperParams) -> list[str]:
    """Names of the parameters FT trains: those of each `rewrite_module_tmp.format(layer)` module."""
    names: list[str] = []
    for layer in hp.layers:
        names += module_parameter_names(model, resolve_module_name(model, hp.rewrite_module_tmp, layer))
    return names


def apply_ft(model: nn.Module, tok, requests: Sequence[EditRequest], hp: FTHyperParams) -> Undo:
    """Fine-tune the FT modules in place on `requests`; return the `Undo` that restores them bit-exactly.

    Invariant: only `ft_parameter_names(model, hp)` change, and with `norm_constraint=eps` every entry
    stays within eps of its value before the call. On an exception the model is restored first.
    """
    if not requests:
        raise ValueError("no requests to edit")
    names = ft_parameter_names(model, hp)
    undo = snapshot_parameters(model, names, description=f"FT ({hp.objective}) on {len(requests)} request(s)")
    device = model_device(model)
    chunks = [requests[i : i + hp.batch_size] for i in range(0, len(requests), hp.batch_size)]
    batches = [ft_scored_batch(tok, c, hp.objective, device) for c in chunks]
    start = first_block_of(model, [n.rsplit(".", 1)[0] for n in names])
    hidden_ins = [bottom_input(model, b, start) for b in batches]  # blocks below the trained ones: once
    try:
        with torch.enable_grad(), train_only(model, names) as params:
            originals = [p.detach().clone() for p in params] if hp.norm_constraint is not None else []
            opt = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
            for step in range(hp.num_steps):
                total, count = 0.0, 0
                for chunk, batch, hidden_in in zip(chunks, batches, hidden_ins, strict=True):
                    opt.zero_grad(set_to_none=True)
                    loss = weighted_nll(scored_logprobs(model, batch, start, hidden_in), batch)
                    total, count = total + loss.item() * len(chunk), count + len(chunk)
                    if loss.item() >= hp.early_stop_loss:
                        loss.backward()
                        opt.step()
                    if hp.norm_constraint is not None:
                        eps = hp.norm_constraint
                        with torch.no_grad():
                            for p, p0 in zip(params, originals, strict=True):
                                p.copy_(torch.clamp(p, min=p0 - eps, max=p0 + eps))
                log.debug("FT %s step %d: mean loss %.4g", hp.objective, step, total / count)
                if total / count < hp.early_stop_loss:
                    break
    except BaseException:
        undo()
        raise
    return undo


def _apply_with_objective(expected: Objective, method: str):
    def edit(model: nn.Module, tok, requests: Sequence[EditRequest], hp: FTHyperParams) -> Undo:
        if hp.objective != expected:
            raise ValueError(f"{method} needs objective={expected!r}, got {hp.objective!r}")
        return apply_ft(model, tok, requests, hp)

    edit.__name__ = f"apply_{method.lower().replace('-', '_')}"
    edit.__doc__ = f"{method}: `apply_ft` with objective {expected!r} (checked)."
    return edit


apply_ft_l = _apply_with_objective("prompt_last", "FT-L")
apply_ft_m = _apply_with_objective("target_new", "FT-M")
