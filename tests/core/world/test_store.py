"""ensure_world builds once into a complete folder; every named dataset resolves in a built world."""

from __future__ import annotations

import pytest

from core.data import read_requests
from core.data.trees import DATASETS, dataset_file
from core.world.store import ensure_world, world_dir


def test_ensure_world_builds_once_and_every_dataset_resolves(tmp_path):
    out = ensure_world(tmp_path, "smoke", 0)
    assert out == world_dir(tmp_path, "smoke", 0) and (out / "stats.json").is_file()
    stamp = (out / "stats.json").stat().st_mtime_ns
    assert ensure_world(tmp_path, "smoke", 0) == out
    assert (out / "stats.json").stat().st_mtime_ns == stamp  # not rebuilt
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left
    for name in DATASETS:
        layout, path = dataset_file(out, name)
        assert read_requests(layout, path), name


def test_world_dir_encodes_seed(tmp_path):
    assert world_dir(tmp_path, "smoke", 0) != world_dir(tmp_path, "smoke", 1)


def test_dataset_file_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        dataset_file(tmp_path, "nope")
    with pytest.raises(FileNotFoundError, match="ZsRE-test-all.json"):
        dataset_file(tmp_path, "zsre")
