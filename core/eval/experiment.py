"""One edit-and-evaluate run from explicit settings to files: the core call behind `run_*` notebooks.

`run_experiment(spec, out_dir)` loads the model, reads the dataset with its layout's reader, prepares
the requests for the layout's evaluation suite (`core.eval.suites`: facts, ConvSent or Sanitation),
loads the method's strict hparams, runs the protocol and writes, atomically, into `out_dir`:

    records.jsonl   one flat row per evaluated case (every metric with its protocol@timing tag)
    metrics.json    flat means per timing: {"<timing>/<metric>": value, ...} plus counts
    hparams.yaml    the resolved hparams exactly as used
    manifest.json   git revision, the run spec, package versions, wall time

Nothing here branches on a method name; everything a method needs is in its hparams file.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import yaml

from core.config import load_hparams
from core.data import read_requests
from core.data.trees import dataset_file
from core.editors.registry import get_method
from core.eval.evaluate import EvalSettings
from core.eval.protocols import run_edits, summarize
from core.eval.suites import suite_for_layout
from core.io import atomic_write_text, write_json, write_jsonl, write_manifest
from core.models.world_lms import resolve_model
from core.types import EditRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """Everything that determines one run's numbers (the run settings; method facts are in hparams)."""

    method: str  # registry key, e.g. "FT-L"
    hparams_path: str  # YAML file of the method's hparams class
    model: str  # world-LM name ("world-gpt2", "world-llama-smoke") or any HF id / local path
    dataset: str  # a name of core.data.trees.DATASETS, e.g. "zsre" (KnowEdit ZsRE test)
    data_root: str  # the data tree: a built world folder or a real download in the same layout
    n_edits: int  # first n records of the file (after the reader's checks); 0 = all
    protocol: Literal["single", "batch", "sequential"] = "single"
    edit_batch_size: int = 1
    eval_after_each: bool = False
    eval_batch_size: int = 64
    greedy: bool = False
    fluency: bool = False
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    threads: int = 2
    require_subject_in_prompt: bool = False

    def __post_init__(self) -> None:
        if self.n_edits < 0:
            raise ValueError(f"n_edits must be >= 0, got {self.n_edits}")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def run_experiment(
    spec: RunSpec,
    out_dir: str | Path,
    *,
    models_dir: str | Path = "data/models",
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run `spec`, write its files into `out_dir` (see module docstring) and return metrics.json's dict."""
    start = time.perf_counter()
    torch.set_num_threads(spec.threads)
    _seed_everything(spec.seed)
    method = get_method(spec.method)
    hp = load_hparams(spec.hparams_path, method.hparams)
    layout, path = dataset_file(spec.data_root, spec.dataset)
    suite = suite_for_layout(layout)
    requests = read_requests(layout, path, require_subject_in_prompt=spec.require_subject_in_prompt)
    requests = suite.prepare(requests, spec.data_root)
    if spec.n_edits:
        if spec.n_edits > len(requests):
            raise ValueError(f"{path}: n_edits={spec.n_edits} but the file has {len(requests)} records")
        requests = requests[: spec.n_edits]
    model, tok = resolve_model(spec.model, models_dir=models_dir, dtype=spec.dtype, device=spec.device)
    settings = EvalSettings(
        batch_size=spec.eval_batch_size, greedy=spec.greedy, fluency=spec.fluency, fluency_seed=spec.seed
    )
    records = run_edits(
        model,
        tok,
        requests,
        spec.method,
        hp,
        protocol=spec.protocol,
        batch_size=spec.edit_batch_size,
        eval_after_each=spec.eval_after_each,
        cache_dir=cache_dir,
        settings=settings,
        suite=suite,
    )
    metrics = summarize_by_timing(records)
    seconds = time.perf_counter() - start
    metrics.update({"n_edits": len(requests), "seconds": round(seconds, 3)})
    out = Path(out_dir)
    write_jsonl(out / "records.jsonl", (r.as_row() for r in records))
    write_json(out / "metrics.json", metrics)
    atomic_write_text(out / "hparams.yaml", yaml.safe_dump(_plain(dataclasses.asdict(hp)), sort_keys=False))
    write_manifest(out, dataclasses.asdict(spec), suite=suite.name, seconds=round(seconds, 3))
    log.info("%s on %s/%s: %s", spec.method, spec.model, spec.dataset, metrics)
    return metrics


def summarize_by_timing(records: list[EditRecord]) -> dict[str, float]:
    """Flat means keyed "<timing>/<metric>" for the post-edit values and "pre/<metric>" for pre-edit ones."""
    timings = sorted({m.timing for r in records for m in r.post})
    out: dict[str, float] = {}
    for t in timings:
        out.update({f"{t}/{k}": v for k, v in summarize(records, timing=t).items()})
    if any(r.pre for r in records):
        out.update({f"pre/{k}": v for k, v in summarize(records, stage="pre").items()})
    return out


def _plain(obj: Any) -> Any:
    if isinstance(obj, tuple | list):
        return [_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj
