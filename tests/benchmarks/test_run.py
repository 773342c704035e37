"""The benchmark script runs end to end on a tiny random GPT-2 with N=1 (no timing checks).

Memory figures cost a fresh spawned process each (~4 s of imports): the first test skips them, the second
measures one (MEMIT, whose child process must read the statistics the parent cached)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.run import main

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_runs_end_to_end(tmp_path):
    out = tmp_path / "results"
    args = ["--models", "random-2x32", "--n-edits", "1", "--warmup", "0", "--n-eval", "2", "--repeats", "1",
            "--threads", "1", "--world-root", str(tmp_path / "world"), "--out-dir", str(out),
            "--random-methods", "FT-L", "ROME", "--cov-samples", "20", "--no-memory", "--name", "t"]  # fmt: skip
    result = main(args)
    assert json.loads((out / "t.json").read_text()) == json.loads(json.dumps(result))
    assert "| random-2x32 | FT-L |" in (out / "t.md").read_text()
    (model,) = result["models"]
    assert model["n_params"] > 50257 * 32 and model["world_profile"] == "smoke"
    assert [t["mode"] for t in model["throughput"]] == ["one call", "per request"]
    for t in model["throughput"]:
        assert t["sequences"] >= 2 and t["raw_s"] > 0 and t["eval_s"] > 0 and t["raw_scored_s"] > 0
        assert t["eval_over_raw_scored"] == t["raw_scored_s"] / t["eval_s"]
    assert [e["method"] for e in model["edits"]] == ["FT-L", "ROME"]
    for e in model["edits"]:
        assert len(e["seconds"]) == 1 and e["passes_per_edit"] >= 1
        assert len(e["floor_s"]) == 1 and 0 < e["median_floor_s"] < e["median_s"]
    # world-gpt2's FT-L layer 2 does not exist in 2 layers, its ROME layer 1 does
    assert [Path(e["hparams"]).stem for e in model["edits"]] == ["world-gpt2-smoke", "world-gpt2"]
    (cov,) = model["edits"][1]["covariance"]
    assert cov["n_samples"] == 20 and cov["seconds"] > 0 and "covariance" not in model["edits"][0]
    assert "| random-2x32 | ROME | transformer.h.1.mlp.c_proj | 20 |" in (out / "t.md").read_text()
    assert result["machine"]["threads"] == 1 and result["reference"]["seconds_per_edit"]["random-4x128"]


def test_benchmark_memory_child_reads_the_parents_statistics(tmp_path):
    out = tmp_path / "results"
    args = ["--models", "random-2x32", "--n-edits", "1", "--warmup", "0", "--n-eval", "2", "--repeats", "1",
            "--threads", "1", "--world-root", str(tmp_path / "world"), "--out-dir", str(out),
            "--random-methods", "MEMIT", "--cov-samples", "20", "--name", "m"]  # fmt: skip
    (model,) = main(args)["models"]
    (e,) = model["edits"]
    assert "skipped" not in e and e["memory"]["peak_delta_mb"] >= 0 and len(e["covariance"]) >= 1
