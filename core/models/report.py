"""Summarise world-LM checkpoints' train reports into one recall table (JSON + Markdown).

    python -m core.models.report --out reports/world_lm --run-logs reports/world_lm/runs \
        data/models/world-gpt2 data/models/world-llama

Reads each checkpoint's `train_report.json` and its run log `<run-logs>/<folder name>.json` (both
written by `core.models.pretrain`; the log holds the minutes, which are not part of the
checkpoint) and writes `recall.json` (flat numbers per model) and `recall.md` (the table the README
quotes), atomically.
The gates are the foundation issue's targets; a row says whether each is met, never hides a miss.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.io import atomic_write_text, write_json

# probe kind -> minimum greedy full-object recall (None = reported, not gated)
GATES: dict[str, float | None] = {
    "trained": 0.95, "recombined": 0.85, "question_unasked": 0.95, "free_paraphrase": None,
}
MAX_TRAIN_MINUTES = {"default": 10.0, "smoke": 1.0}


def _run_report(log_dir: Path, name: str) -> dict[str, Any]:
    path = log_dir / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run log for {name} (written by core.models.pretrain --run-log)")
    run = json.loads(path.read_text())
    if not isinstance(run, dict) or "train_minutes" not in run.get("report", {}):
        raise ValueError(f"{path}: field report.train_minutes is missing")
    return run["report"]


def summarize_reports(model_dirs: Sequence[str | Path], run_logs: str | Path) -> dict[str, dict[str, Any]]:
    """Per model name: recall per probe kind, gate verdicts, minutes (from `run_logs`), parameters, steps."""
    out = {}
    for d in model_dirs:
        rep = json.loads((Path(d) / "train_report.json").read_text())
        rep = {**rep, **_run_report(Path(run_logs), Path(d).name)}
        profile = rep.get("run_info", {}).get("world_profile", "default")
        row: dict[str, Any] = {
            "arch": rep["arch"], "world_profile": profile, "n_params": rep["n_params"],
            "steps": rep["steps"], "stop_reason": rep["stop_reason"],
            "train_minutes": round(rep["train_minutes"], 2), "total_minutes": round(rep["total_minutes"], 2),
        }
        for kind, gate in GATES.items():
            value = rep["recall"].get(kind)
            row[f"recall/{kind}"] = value
            if gate is not None and value is not None:
                row[f"pass/{kind}"] = value >= gate
        limit = MAX_TRAIN_MINUTES.get(profile)
        if limit is not None:
            row["pass/train_minutes"] = rep["train_minutes"] <= limit
        out[Path(d).name] = row
    return out


def to_markdown(summary: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: one row per model, recall in %, gates shown as the target beside each value."""
    kinds = list(GATES)
    head = ["model", "params", "train min"] + [
        f"{k} (>= {GATES[k]:.0%})" if GATES[k] is not None else f"{k} (not gated)" for k in kinds
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in summary.items():
        cells = [name, f"{r['n_params'] / 1e6:.2f}M", f"{r['train_minutes']:.1f}"]
        for k in kinds:
            v = r.get(f"recall/{k}")
            mark = "" if f"pass/{k}" not in r else (" ok" if r[f"pass/{k}"] else " MISS")
            cells.append("n/a" if v is None else f"{100 * v:.1f}%{mark}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--run-logs", required=True, type=Path, help="folder of the models' run logs")
    ap.add_argument("model_dirs", nargs="+")
    args = ap.parse_args(argv)
    summary = summarize_reports(args.model_dirs, args.run_logs)
    write_json(args.out / "recall.json", summary)
    atomic_write_text(args.out / "recall.md", to_markdown(summary))


if __name__ == "__main__":
    main()
