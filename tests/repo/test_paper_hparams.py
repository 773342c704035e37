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
BENCH_FILES = sorted(ROOT.glob("benchmarks/hparams/*/*/*.yaml"))  # benchmark workloads, same classes


def test_paper_hparams_exist():
    assert any(p.stem == "llama-2-7b-chat" for p in FILES), "KnowEdit's paper model needs hparams"


@pytest.mark.parametrize("path", FILES + BENCH_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_paper_hparams_load_strictly(path):
    method = path.parent.name
    assert method in METHODS, f"{path}: folder {method!r} is not a registered method"
    hp = load_hparams(path, METHODS[method].hparams)
    assert isinstance(hp, METHODS[method].hparams)


def _trainer_configs() -> dict[str, type]:
    from core.editors.serac.train import SERACTrainConfig
    from core.hypernet.config import MENDTrainConfig

    return {"MEND": MENDTrainConfig, "SERAC": SERACTrainConfig}


TRAINING_FILES = sorted(ROOT.glob("papers/*/hparams/TRAINING/*/*.yaml"))


@pytest.mark.parametrize("path", TRAINING_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_paper_training_configs_load_strictly(path):
    configs = _trainer_configs()
    assert path.parent.name in configs, f"{path}: no trainer for {path.parent.name!r}"
    assert isinstance(load_hparams(path, configs[path.parent.name]), configs[path.parent.name])
