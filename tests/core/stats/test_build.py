"""The stats build CLI writes one covariance per layer where cached_layer_cov finds it, plus an index."""

from __future__ import annotations

import json

import pytest
import torch

from core.models.loading import load_model
from core.models.tiny import TINY_TEXTS, save_tiny_model
from core.stats import cached_layer_cov, compute_layer_cov
from core.stats.build import main


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_build_writes_every_layer_and_runs_then_hit_the_cache(tmp_path, arch):
    torch.set_num_threads(1)
    path = save_tiny_model(arch, tmp_path / "model")
    out = tmp_path / "stats"
    main(["--model", str(path), "--corpus", "tiny", "--n-samples", "5", "--out", str(out), "--threads", "1"])
    index = json.loads((out / "index.json").read_text())
    model, tok = load_model(str(path))
    n_layers = model.config.num_hidden_layers
    assert [row["layer"] for row in index["layers"]] == list(range(n_layers))
    for row in index["layers"]:
        saved = torch.load(row["path"], weights_only=True)
        direct = compute_layer_cov(model, tok, row["module"], list(TINY_TEXTS[:5]), max_length=256)
        torch.testing.assert_close(saved, direct)
        hit = cached_layer_cov(model, tok, row["module"], dataset="tiny", n_samples=5, dtype="float32",
                               stats_dir=str(out))  # fmt: skip
        assert torch.equal(hit, saved)
