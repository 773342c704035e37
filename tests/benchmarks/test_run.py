"""The benchmark script runs end to end on a tiny random GPT-2 with N=1 (no timing checks).

One method only: each method's memory figure costs a fresh spawned process (~4 s of imports)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.run import main

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_runs_end_to_end(tmp_path):
    out = tmp_path / "results"
    args = ["--models", "random-2x32", "--n-edits", "1", "--warmup", "0", "--n-eval", "2", "--repeats", "1",
            "--threads", "1", "--world-root", str(tmp_path / "world"), "--out-dir", str(out),
            "--random-methods", "FT-L", "--name", "t"]  # fmt: skip
    result = main(args)
    assert json.loads((out / "t.json").read_text()) == json.loads(json.dumps(result))
    assert "| random-2x32 | FT-L |" in (out / "t.md").read_text()
    (model,) = result["models"]
    assert model["n_params"] > 50257 * 32 and model["world_profile"] == "smoke"
    assert [t["mode"] for t in model["throughput"]] == ["one call", "per request"]
    for t in model["throughput"]:
        assert t["sequences"] >= 2 and t["raw_s"] > 0 and t["eval_s"] > 0
    assert [e["method"] for e in model["edits"]] == ["FT-L"]
    for e in model["edits"]:
        assert len(e["seconds"]) == 1 and e["forwards_per_edit"] >= 1
        assert e["hparams"].endswith("world-gpt2-smoke.yaml")  # world-gpt2's layer 2 does not exist here
        assert e["memory"]["peak_delta_mb"] >= 0
    assert result["machine"]["threads"] == 1 and result["reference"]["seconds_per_edit"]["random-4x128"]
