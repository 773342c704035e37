"""SERAC's edit function and hparams: put requests into the edit memory of a router hooked on the model.

`apply_serac(model, tok, requests, hp)` loads the trained archive named by `hp.archive` (checked against
the model's tokenizer), installs a `SeracRouter` on the model unless one is there, and pushes the
requests into its edit memory (Mitchell et al. 2022, §3: editing is adding z_e to the memory; the
weights of the base model never change). The returned `Undo` pops exactly these entries; the last one
removes the hooks. Sequential edits stack in the one memory (the router of the first call).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from core.editors.base import Undo, UndoError
from core.editors.serac.archive import load_archive
from core.editors.serac.router import SeracRouter, find_router
from core.memory.edit_memory import EditMemoryError
from core.types import EditRequest


@dataclass(frozen=True, kw_only=True)
class SERACHyperParams:
    """`archive`: a folder written by `core.editors.serac_train`, or `tiny-<arch>` (the in-code test
    archive for `core.models.tiny` models); `threshold`: route to h when max_e g(z_e, x) > threshold."""

    archive: str
    threshold: float

    def __post_init__(self) -> None:
        if not isinstance(self.archive, str) or not self.archive:
            raise ValueError("archive must be a non-empty string")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise ValueError(f"threshold must be a number, got {self.threshold!r}")
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")


def apply_serac(model: nn.Module, tok, requests: Sequence[EditRequest], hp: SERACHyperParams) -> Undo:
    """Add `requests` to the model's SERAC memory (installing the router if needed); `Undo` removes them."""
    if not requests:
        raise ValueError("no requests to edit")
    archive = load_archive(hp.archive)
    router = find_router(model)
    if router is None:
        router = SeracRouter(model, tok, archive, hp.threshold)
    elif router.archive is not archive or router.tok is not tok or router.threshold != hp.threshold:
        raise ValueError("the model carries SERAC edits made with another archive, tokenizer or threshold")
    try:
        entries = router.push(requests)
    except BaseException:
        if not len(router.memory):
            router.remove()
        raise

    def restore() -> None:
        try:
            router.pop(entries)
        except EditMemoryError as e:
            raise UndoError(f"SERAC: {e} (undo later edits first)") from None
        if not len(router.memory):
            router.remove()

    return Undo(restore, f"remove {len(entries)} SERAC edit(s) from the edit memory")
