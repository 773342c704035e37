"""MEND: edit with a meta-trained gradient-decomposition network (Mitchell et al. 2022, ICLR; KnowEdit §4.1).

`apply_mend(model, tok, requests, hp)` runs the MEND edit of EasyEdit's `MendRewriteExecutor`
(easyedit-notes §4): one teacher-forced NLL of `prompt + " " + target_new` over the target tokens of
all requests (one batch edit), its gradient captured as rank-one factors of each edited weight, the
editor's pseudo-gradient, and W <- W - alpha_l * grad~ written into the live model; the returned
`Undo` restores the edited weights bit-exactly (snapshot). The editor comes from `hp.archive`, a
checkpoint of `core.hypernet.trainer` (editor only; its fingerprint must match the model and its
network config the hparams). `archive: null` builds an UNTRAINED, identity-initialised editor: with no
normalisation statistics its edit is exactly one gradient-descent step of size `edit_lr` on the edited
weights. That setting exists for the contract tests on tiny random models and is not MEND.

The checkpoint is read on each call (a few MB; no module-level cache), so sequential calls and other
models never share hidden state (EasyEdit's singleton executor, notes §10.4). `train_mend` is the
registry's trainer entry point (`core.hypernet.trainer.train_editor`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.editors.base import EncodedBatch, Undo, encode_prompt_target, model_device, snapshot_parameters
from core.editors.ft import target_new_loss
from core.hypernet.checkpoint import load_editor
from core.hypernet.config import MENDNetConfig
from core.hypernet.mend import Factors, MENDEditor, build_editor, capture_factors
from core.types import EditRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class MENDHyperParams(MENDNetConfig):
    """Edit-time MEND hparams: the `MENDNetConfig` the editor was trained with, plus its checkpoint.

    `archive`: path of the editor checkpoint (`editor.pt` written by `python -m core.hypernet.train`),
    relative to the working directory of the run; `null` = untrained identity editor (tests only, see
    the module docstring).
    """

    archive: str | None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.archive is not None and (not isinstance(self.archive, str) or not self.archive):
            raise ValueError(f"archive must be a checkpoint path or null, got {self.archive!r}")


def model_inputs(batch: EncodedBatch) -> dict[str, torch.Tensor]:
    """Keyword inputs of a causal LM for `batch` (mask-derived positions, no cache)."""
    return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
            "position_ids": batch.position_ids, "use_cache": False}  # fmt: skip


def edit_factors(
    model: nn.Module, editor: MENDEditor, tok, prompts: Sequence[str], targets: Sequence[str]
) -> Factors:
    """Rank-one gradient factors of the edit NLL (target tokens of `prompt + " " + target`, teacher forced)."""
    batch = encode_prompt_target(tok, prompts, targets, model_device(model))
    return capture_factors(
        model, editor.weights, lambda logits: target_new_loss(logits, batch), model_inputs(batch)
    )


def load_mend_editor(model: nn.Module, hp: MENDHyperParams) -> MENDEditor:
    """The editor of `hp` for `model`, in eval mode, on the model's device."""
    if hp.archive is None:
        log.warning("MEND archive is null: using an UNTRAINED identity editor (a plain gradient step)")
        editor = build_editor(hp, model, seed=0)
    else:
        editor = load_editor(hp.archive, model, hp)
    return editor.to(model_device(model)).eval()


def apply_mend(model: nn.Module, tok, requests: Sequence[EditRequest], hp: MENDHyperParams) -> Undo:
    """Edit `requests` (together) with the MEND editor of `hp`; return the `Undo` restoring the weights.

    Invariant: only the weights of `hp.layers` x `hp.inner_modules` change; on an exception the model is
    restored first.
    """
    if not requests:
        raise ValueError("no requests to edit")
    editor = load_mend_editor(model, hp)
    names = [w.param for w in editor.weights]
    undo = snapshot_parameters(model, names, description=f"MEND on {len(requests)} request(s)")
    try:
        was_training = model.training
        model.eval()
        try:
            factors = edit_factors(
                model, editor, tok, [r.prompt for r in requests], [r.target_new for r in requests]
            )
        finally:
            model.train(was_training)
        params = dict(model.named_parameters())
        with torch.no_grad():
            new = editor.new_weights({n: params[n] for n in names}, factors)
            for n in names:
                params[n].copy_(new[n])
    except BaseException:
        undo()
        raise
    return undo


def train_mend(*args: Any, **kwargs: Any):
    """Registry `train` entry point: `core.hypernet.trainer.train_editor` (see there for arguments)."""
    from core.hypernet.trainer import train_editor  # the trainer imports core.editors (import cycle)

    return train_editor(*args, **kwargs)
