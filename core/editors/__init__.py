"""Knowledge-editing methods: one module per method plus `registry.METHODS` (house style 4.4).

`get_method(name).edit(model, tok, requests, hp)` edits in place and returns an `Undo`.
"""

from core.editors.base import Undo, UndoError, chain_undos, snapshot_parameters
from core.editors.registry import METHODS, Method, UnknownMethodError, get_method

__all__ = [
    "METHODS",
    "Method",
    "Undo",
    "UndoError",
    "UnknownMethodError",
    "chain_undos",
    "get_method",
    "snapshot_parameters",
]
