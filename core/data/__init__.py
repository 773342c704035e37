"""Readers of the real dataset file layouts -> `list[EditRequest]`, one per layout, plus a dispatch table.

`READERS` maps a layout name to its reader; `read_requests(layout, path, **kw)` calls it. Every reader
takes a path and keyword options (all accept `require_subject_in_prompt`, which ROME/MEMIT need), and
either returns every record of the file or raises `DataError` naming file, record and field; it never
returns a partial list. Case ids are `<file stem>/<record index>` (`<stem>/<part>/<index>` for
Sanitation). Shared policies: prompts and targets must be non-blank strings; a subject may be blank
unless `require_subject_in_prompt=True`; answers given as alias lists become their first alias; a
probe (locality/portability) whose answer is blank is dropped, never the request. Layouts (and modules):

- knowedit-recent, knowedit-zsre, knowedit-wikibio, knowedit-counterfact, knowedit-convsent,
  knowedit-sanitation (`knowedit`)
- zsre-mend (`zsre`); counterfact-rome, counterfact-easyedit (`counterfact`)
- wise-zsre, wise-hallucination, wise-temporal (`wise`; also `load_wise_loc_prompts`)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.data.counterfact import read_counterfact_easyedit, read_counterfact_rome
from core.data.errors import DataError
from core.data.knowedit import (
    read_knowedit_convsent,
    read_knowedit_counterfact,
    read_knowedit_recent,
    read_knowedit_sanitation,
    read_knowedit_wikibio,
    read_knowedit_zsre,
)
from core.data.wise import load_wise_loc_prompts, read_wise_hallucination, read_wise_temporal, read_wise_zsre
from core.data.zsre import read_zsre_mend
from core.types import EditRequest

READERS: dict[str, Callable[..., list[EditRequest]]] = {
    "knowedit-recent": read_knowedit_recent,
    "knowedit-zsre": read_knowedit_zsre,
    "knowedit-wikibio": read_knowedit_wikibio,
    "knowedit-counterfact": read_knowedit_counterfact,
    "knowedit-convsent": read_knowedit_convsent,
    "knowedit-sanitation": read_knowedit_sanitation,
    "zsre-mend": read_zsre_mend,
    "counterfact-rome": read_counterfact_rome,
    "counterfact-easyedit": read_counterfact_easyedit,
    "wise-zsre": read_wise_zsre,
    "wise-hallucination": read_wise_hallucination,
    "wise-temporal": read_wise_temporal,
}


def read_requests(layout: str, path: str | Path, **kw: Any) -> list[EditRequest]:
    """Read `path` with the reader registered for `layout`; unknown layouts raise ValueError listing them."""
    try:
        reader = READERS[layout]
    except KeyError:
        raise ValueError(f"unknown data layout {layout!r}; known: {sorted(READERS)}") from None
    return reader(path, **kw)


__all__ = [
    "READERS",
    "DataError",
    "load_wise_loc_prompts",
    "read_counterfact_easyedit",
    "read_counterfact_rome",
    "read_knowedit_convsent",
    "read_knowedit_counterfact",
    "read_knowedit_recent",
    "read_knowedit_sanitation",
    "read_knowedit_wikibio",
    "read_knowedit_zsre",
    "read_requests",
    "read_wise_hallucination",
    "read_wise_temporal",
    "read_wise_zsre",
    "read_zsre_mend",
]
