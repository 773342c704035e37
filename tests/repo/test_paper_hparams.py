"""Every paper hparams file loads strictly into its method's hparams class (house style 4.5).

Files are `papers/<paper>/hparams/<METHOD>/<model>.yaml`; the METHOD folder must be a registry key
(TRAINING/ holds trainer configs and is checked by the trainers' own tests).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_hparams
from core.editors.registry import METHODS

ROOT = Path(__file__).parents[2]
FILES = sorted(p for p in ROOT.glob("papers/*/hparams/*/*.yaml") if p.parent.name != "TRAINING")


def test_paper_hparams_exist():
    assert any(p.stem == "llama-2-7b-chat" for p in FILES), "KnowEdit's paper model needs hparams"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_paper_hparams_load_strictly(path):
    method = path.parent.name
    assert method in METHODS, f"{path}: folder {method!r} is not a registered method"
    hp = load_hparams(path, METHODS[method].hparams)
    assert isinstance(hp, METHODS[method].hparams)
