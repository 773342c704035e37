"""Building blocks shared by the weight-editing methods: undo snapshots, module lookup, batch encoding.

`Undo` is the restore callable every `Method.edit` returns (house style 4.4; EasyEdit's
`weights_copy`/`restore_after_edit`, notes 1.2, made one uniform object). Stateless methods (FT,
ROME, MEMIT) snapshot only the parameters they touch with `snapshot_parameters`; restoring copies
the saved tensors back, which is bit-exact. An `Undo` runs at most once: a second call raises
`UndoError` instead of silently rolling back later edits (undo sequential edits in reverse order,
or with `chain_undos`).

`encode_prompt_target` builds the teacher-forcing batch for locate-then-edit losses from ONE
tokenization of `prompt + " " + target` with character offsets (`core.eval.scoring.encode_answer`,
fixing EasyEdit defect 10.3, which counts tokens of two separate tokenizations), so the tokens an
edit trains are exactly the tokens the metrics score. Padding follows `tok.padding_side`, and
`forward_logits` passes position ids derived from the attention mask so that left- and
right-padded batches give the same logits.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from core.eval.scoring import encode_answer
from core.models.arch import get_arch
from core.models.inputs import position_ids_from_mask

log = logging.getLogger(__name__)


class UndoError(RuntimeError):
    """An `Undo` was called twice, or a snapshot no longer matches the model."""


class Undo:
    """Restores the model to its state before one `edit` call; callable exactly once.

    Invariant: after `undo()`, every parameter and buffer the edit touched is bit-identical
    (`torch.equal`) to its value when the snapshot was taken, provided later edits were undone first.
    """

    def __init__(self, restore: Callable[[], None], description: str = "") -> None:
        self._restore: Callable[[], None] | None = restore
        self.description = description

    @property
    def applied(self) -> bool:
        """True once the restore has run."""
        return self._restore is None

    def __call__(self) -> None:
        if self._restore is None:
            raise UndoError(f"undo already applied ({self.description or 'unnamed edit'})")
        restore, self._restore = self._restore, None  # drop references (snapshots) once used
        restore()

    def __repr__(self) -> str:
        state = "applied" if self.applied else "pending"
        return f"Undo({self.description!r}, {state})"


def snapshot_parameters(model: nn.Module, names: Sequence[str], description: str = "") -> Undo:
    """Copy the named parameters now; the returned `Undo` writes the copies back in place."""
    params = dict(model.named_parameters())
    unknown = [n for n in names if n not in params]
    if unknown:
        raise KeyError(f"model has no parameter(s) {unknown}")
    saved = {n: params[n].detach().clone() for n in dict.fromkeys(names)}

    def restore() -> None:
        current = dict(model.named_parameters())
        with torch.no_grad():
            for n, t in saved.items():
                p = current[n]
                if p.shape != t.shape or p.dtype != t.dtype:
                    raise UndoError(f"parameter {n} changed shape or dtype since the snapshot")
                p.copy_(t)

    return Undo(restore, description or f"snapshot of {len(saved)} parameter(s)")


def chain_undos(undos: Sequence[Undo], description: str = "") -> Undo:
    """One `Undo` that runs `undos` in reverse order (last edit undone first)."""
    undos = list(undos)

    def restore() -> None:
        for u in reversed(undos):
            u()

    return Undo(restore, description or f"chain of {len(undos)} undo(s)")


def resolve_module_name(model: nn.Module, template: str | None, layer: int, role: str = "mlp_out") -> str:
    """The module name for `layer`: `template.format(layer)`, or the arch spec's `role` template field.

    The arch spec is chosen by `model.config.model_type` (core.models.arch), never by model name.
    """
    if template is None:
        template = getattr(get_arch(model), role)
        if not isinstance(template, str):
            raise ValueError(f"arch {model.config.model_type!r} has no {role!r} module template")
    name = template.format(layer)
    modules = dict(model.named_modules())
    if name not in modules:
        raise KeyError(f"model ({model.config.model_type}) has no module {name!r} (template {template!r})")
    return name


def module_parameter_names(model: nn.Module, module_name: str) -> list[str]:
    """Full names of the parameters owned by `module_name` (e.g. weight and bias of a projection)."""
    module = model.get_submodule(module_name)
    return [f"{module_name}.{n}" for n, _ in module.named_parameters()]


@dataclass(frozen=True)
class EncodedBatch:
    """Teacher-forcing batch: `target_mask[b, t]` is True where token t belongs to the target."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    target_mask: torch.Tensor  # (B, T) bool

    @property
    def position_ids(self) -> torch.Tensor:
        """(B, T) positions counted over real tokens only, so left padding does not shift them."""
        return position_ids_from_mask(self.attention_mask)

    def target_ids(self) -> list[list[int]]:
        """The target token ids of each row."""
        return [row[m].tolist() for row, m in zip(self.input_ids, self.target_mask, strict=True)]


def encode_prompt_target(
    tok, prompts: Sequence[str], targets: Sequence[str], device: torch.device | str
) -> EncodedBatch:
    """Encode `prompt + " " + target` pairs and mark the target tokens, padded on `tok.padding_side`.

    The spans come from `core.eval.scoring.encode_answer` (one tokenization with offsets), so editing
    losses and the metrics see exactly the same target tokens. Pads use `tok.pad_token_id` (else eos,
    else 0) and are masked out everywhere.
    """
    if len(prompts) != len(targets) or not prompts:
        raise ValueError(f"need as many prompts as targets (>0), got {len(prompts)} and {len(targets)}")
    encs = [encode_answer(tok, p, t) for p, t in zip(prompts, targets, strict=True)]
    width = max(len(e.input_ids) for e in encs)
    pad_id = next((i for i in (tok.pad_token_id, tok.eos_token_id) if i is not None), 0)
    left = tok.padding_side == "left"
    ids = torch.full((len(encs), width), int(pad_id), dtype=torch.long)
    attn = torch.zeros((len(encs), width), dtype=torch.long)
    tmask = torch.zeros((len(encs), width), dtype=torch.bool)
    for b, e in enumerate(encs):
        shift = width - len(e.input_ids) if left else 0
        ids[b, shift : shift + len(e.input_ids)] = torch.tensor(e.input_ids)
        attn[b, shift : shift + len(e.input_ids)] = 1
        tmask[b, shift + e.start : shift + e.end] = True
    return EncodedBatch(ids.to(device), attn.to(device), tmask.to(device))


def forward_logits(model: nn.Module, batch: EncodedBatch) -> torch.Tensor:
    """Logits (B, T, V) of `batch` with mask-derived position ids."""
    out = model(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids
    )
    return out.logits


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (where inputs go)."""
    return next(model.parameters()).device


@contextlib.contextmanager
def train_only(model: nn.Module, names: Sequence[str]) -> Iterator[list[nn.Parameter]]:
    """Within the block only `names` require grad and the model is in eval mode (no dropout).

    Yields the trainable parameters; restores every `requires_grad` flag and the train/eval mode on exit.
    """
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    was_training = model.training
    wanted = set(names)
    params = []
    try:
        model.eval()
        for n, p in model.named_parameters():
            p.requires_grad_(n in wanted)
            if n in wanted:
                params.append(p)
        yield params
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
        model.train(was_training)
