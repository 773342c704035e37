"""The method registry: one explicit dict from paper spelling to `Method` (house style 4.4).

ROME's `ALG_DICT` moved into core and made uniform: every method is an `edit(model, tok, requests,
hp) -> Undo` function plus its frozen hparams class (and a `train` function for meta-learned
methods). An explicit dict is greppable and does not depend on import order; evaluation code looks
methods up here and never branches on their names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

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
