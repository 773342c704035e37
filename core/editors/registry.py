"""The method registry: one explicit dict from paper spelling to `Method` (house style 4.4).

ROME's `ALG_DICT` moved into core and made uniform: every method is an `edit(model, tok, requests,
hp) -> Undo` function plus its frozen hparams class (and a `train` function for meta-learned
methods). An explicit dict is greppable and does not depend on import order; evaluation code looks
methods up here and never branches on their names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from core.config import load_hparams
from core.editors.base import Undo
from core.editors.ft import FTHyperParams, apply_ft_l, apply_ft_m
from core.editors.icl import ICEHyperParams, IKEHyperParams, apply_ice, apply_ike
from core.editors.kn import KNHyperParams, apply_kn
from core.editors.lora import AdaLoRAHyperParams, LoRAHyperParams, apply_adalora, apply_lora
from core.editors.memit import MEMITHyperParams, apply_memit
from core.editors.mend import MENDHyperParams, apply_mend, train_mend
from core.editors.rome import ROMEHyperParams, apply_rome
from core.editors.serac import SERACHyperParams, apply_serac, train_serac
from core.types import EditRequest

log = logging.getLogger(__name__)

EditFn = Callable[[nn.Module, Any, Sequence[EditRequest], Any], Undo]


@dataclass(frozen=True, kw_only=True)
class Method:
    """An editing method: its registry name, hparams class, edit function and optional trainer."""

    name: str
    hparams: type
    edit: EditFn
    train: Callable[..., Any] | None = None


class UnknownMethodError(LookupError):
    """A method name that is not a key of `METHODS`."""


class MethodUnavailableError(LookupError):
    """A method that cannot run here: unregistered, without an hparams file, or with its editor untrained."""


METHODS: dict[str, Method] = {
    "FT-L": Method(name="FT-L", hparams=FTHyperParams, edit=apply_ft_l),
    "FT-M": Method(name="FT-M", hparams=FTHyperParams, edit=apply_ft_m),
    "ROME": Method(name="ROME", hparams=ROMEHyperParams, edit=apply_rome),
    "MEMIT": Method(name="MEMIT", hparams=MEMITHyperParams, edit=apply_memit),
    "AdaLoRA": Method(name="AdaLoRA", hparams=AdaLoRAHyperParams, edit=apply_adalora),
    "LoRA": Method(name="LoRA", hparams=LoRAHyperParams, edit=apply_lora),
    "ICE": Method(name="ICE", hparams=ICEHyperParams, edit=apply_ice),
    "IKE": Method(name="IKE", hparams=IKEHyperParams, edit=apply_ike),
    "MEND": Method(name="MEND", hparams=MENDHyperParams, edit=apply_mend, train=train_mend),
    "KN": Method(name="KN", hparams=KNHyperParams, edit=apply_kn),
    "SERAC": Method(name="SERAC", hparams=SERACHyperParams, edit=apply_serac, train=train_serac),
}


def get_method(name: str) -> Method:
    """The registered method called `name` (paper spelling, e.g. "FT-L")."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethodError(f"unknown method {name!r}; known methods: {sorted(METHODS)}") from None


def resolve_hparams(
    methods: Sequence[str], template: str, model: str = "", *, strict: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """({method: hparams}, {method: why it is skipped}) from `template.format(method=m, model=model)`.

    A method cannot run when it is not registered, has no hparams file, or its hparams name a trained
    `archive` (MEND, SERAC) that does not exist yet (`archive: null`, an untrained editor, is allowed).
    With `strict` the first such method raises MethodUnavailableError; otherwise it is skipped with a
    WARNING (smoke runs and default lists name methods still being built or trained).
    """
    hps: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in methods:
        path = Path(template.format(method=name, model=model))
        if name not in METHODS:
            problem = "not registered in core.editors.registry.METHODS"
        elif not path.is_file():
            problem = f"no hparams file {path}"
        else:
            hp = load_hparams(path, METHODS[name].hparams)
            archive = getattr(hp, "archive", None)
            missing = archive is not None and not Path(archive).exists()
            problem = f"trained archive {archive} does not exist (from {path}; run its training stage first)"
            if not missing:
                hps[name] = hp
                continue
        if strict:
            raise MethodUnavailableError(f"method {name!r}: {problem}")
        log.warning("skipping %s: %s", name, problem)
        skipped[name] = problem
    return hps, skipped
