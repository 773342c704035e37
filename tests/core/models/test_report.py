"""World-LM recall report: recall from the checkpoint, minutes from the run log, gates, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.io import write_json
from core.models.report import main, summarize_reports, to_markdown

RECALL = {"trained": 0.99, "recombined": 0.80, "question_unasked": 0.97, "free_paraphrase": 0.1}


def _model(root: Path, name: str, minutes: float | None, profile: str = "default") -> Path:
    d = root / "models" / name
    write_json(d / "train_report.json", {
        "arch": "gpt2", "n_params": 1_120_000, "steps": 100, "stop_reason": "target", "recall": RECALL,
        "run_info": {"world_profile": profile}})
    if minutes is not None:
        write_json(root / "runs" / f"{name}.json", {"manifest": {}, "report": {
            "train_minutes": minutes, "total_minutes": minutes + 1}})
    return d


def test_summary_reads_minutes_from_the_run_log_and_gates(tmp_path: Path) -> None:
    fast, slow = _model(tmp_path, "world-gpt2", 6.0), _model(tmp_path, "world-llama", 12.5)
    s = summarize_reports([fast, slow], tmp_path / "runs")
    assert s["world-gpt2"]["train_minutes"] == 6.0 and s["world-gpt2"]["pass/train_minutes"]
    assert not s["world-llama"]["pass/train_minutes"] and s["world-llama"]["total_minutes"] == 13.5
    assert s["world-gpt2"]["pass/trained"] and not s["world-gpt2"]["pass/recombined"]
    assert "pass/free_paraphrase" not in s["world-gpt2"]
    md = to_markdown(s)
    assert "| world-gpt2 | 1.12M | 6.0 | 99.0% ok | 80.0% MISS | 97.0% ok | 10.0% |" in md


def test_missing_or_bad_run_log_names_the_file(tmp_path: Path) -> None:
    d = _model(tmp_path, "world-gpt2", None)
    with pytest.raises(FileNotFoundError, match="runs/world-gpt2.json"):
        summarize_reports([d], tmp_path / "runs")
    write_json(tmp_path / "runs" / "world-gpt2.json", {"report": {}})
    with pytest.raises(ValueError, match="world-gpt2.json: field report.train_minutes"):
        summarize_reports([d], tmp_path / "runs")


def test_cli_writes_both_files(tmp_path: Path) -> None:
    d = _model(tmp_path, "world-gpt2", 6.0)
    main(["--out", str(tmp_path / "out"), "--run-logs", str(tmp_path / "runs"), str(d)])
    assert json.loads((tmp_path / "out" / "recall.json").read_text())["world-gpt2"]["steps"] == 100
    assert (tmp_path / "out" / "recall.md").read_text().startswith("| model |")
