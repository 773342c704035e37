"""Paper hparams that read the layer_stats DVC outputs ask for exactly the statistics that stage builds.

A mismatch (another corpus, sample count or dtype) would not fail: ROME/MEMIT would silently compute a
new covariance into a DVC-tracked folder during a run. This test makes it fail in CI instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
STATS_FILES = sorted(
    p for p in (ROOT / "papers").glob("*/hparams/*/*.yaml")
    if "stats_dir" in (text := p.read_text()) and "data/stats/world-" in text
)  # fmt: skip


def test_some_hparams_use_the_stage_outputs():
    assert STATS_FILES, "no paper hparams read data/stats/world-<arch>: the layer_stats stage would be unused"


@pytest.mark.parametrize("path", STATS_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hparams_match_the_layer_stats_stage(path):
    hp = yaml.safe_load(path.read_text())
    model = path.stem  # hparams/<METHOD>/<model>.yaml
    world = PARAMS["world"]
    assert hp["stats_dir"] == f"../../data/stats/{model}"
    assert model.removeprefix("world-") in PARAMS["world_lm"]["archs"]
    assert hp["mom2_dataset"] == f"world:{world['profile']}:{world['seed']}"
    assert hp["mom2_n_samples"] == PARAMS["layer_stats"]["n_samples"]
    assert hp["mom2_dtype"] == PARAMS["layer_stats"]["dtype"]
