"""Command line: meta-train a MEND editor for one model on named datasets and write it to a folder.

    python -m core.hypernet.train --model world-gpt2 --data-root data/world/default \
        --train zsre-mend-train --val zsre-mend-eval \
        --config papers/knowedit/hparams/TRAINING/MEND/world-gpt2.yaml \
        --out data/editors/knowedit/MEND/world-gpt2

Dataset names are keys of `core.data.trees.DATASETS`; models resolve with
`core.models.world_lms.resolve_model` (smoke world LMs are trained on demand). Without `--val` the
last `val_size` training records are held out for validation (and not trained on). The output folder
gets, each written atomically:

    editor.pt      the best editor only (`core.hypernet.checkpoint`; load with MENDHyperParams.archive)
    config.yaml    the training config as used
    history.jsonl  one row per validation: step, mean training losses since the last row, val metrics
    metrics.json   best validation metrics, best step, stop reason, counts
    manifest.json  arguments, package versions

The folder holds only what the inputs determine, so retraining with the same inputs gives the same DVC
hash. `--run-log FILE` receives what varies per run: the full manifest (git revision, platform), the
total seconds and each validation row's seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from core.config import load_hparams
from core.data import read_requests
from core.data.trees import dataset_file
from core.hypernet.config import MENDTrainConfig
from core.hypernet.trainer import TrainResult, train_editor
from core.io import atomic_write_text, write_json, write_jsonl, write_manifest, write_run_log
from core.models.world_lms import resolve_model
from core.types import EditRequest

log = logging.getLogger(__name__)


def _read(data_root: str, name: str) -> list[EditRequest]:
    layout, path = dataset_file(data_root, name)
    return read_requests(layout, path)


def _plain(obj: Any) -> Any:
    if isinstance(obj, tuple | list):
        return [_plain(x) for x in obj]
    return obj


def run_training(
    *, model: str, data_root: str, train: str, val: str | None, config: str | Path, out: str | Path,
    models_dir: str | Path = "data/models", device: str = "cpu", threads: int = 1, run_log: str | Path | None = None,
) -> TrainResult:  # fmt: skip
    """Train per the arguments (see the module docstring) and write the output folder."""
    start = time.perf_counter()
    torch.set_num_threads(threads)
    cfg = load_hparams(config, MENDTrainConfig)
    train_reqs = _read(data_root, train)
    if val is None:
        if len(train_reqs) <= cfg.val_size:
            raise ValueError(
                f"{train}: {len(train_reqs)} records cannot spare val_size={cfg.val_size} for validation"
            )
        train_reqs, val_reqs = train_reqs[: -cfg.val_size], train_reqs[-cfg.val_size :]
    else:
        val_reqs = _read(data_root, val)
    lm, tok = resolve_model(model, models_dir=models_dir, device=device)
    out = Path(out)
    info = {
        "model": model,
        "data_root": data_root,
        "train_data": train,
        "val_data": val or f"last {cfg.val_size} of {train}",
    }
    result = train_editor(lm, tok, train_reqs, val_reqs, cfg, out_path=out / "editor.pt", info=info)
    seconds = round(time.perf_counter() - start, 2)
    atomic_write_text(out / "config.yaml", yaml.safe_dump({k: _plain(v) for k, v in dataclasses.asdict(cfg).items()},
                                                          sort_keys=False))  # fmt: skip
    write_jsonl(out / "history.jsonl", [{k: v for k, v in row.items() if k != "seconds"} for row in result.history])
    write_json(out / "metrics.json", {
        **{f"best/{k}": v for k, v in result.best.items()}, "best_step": result.best_step,
        "stopped": result.stopped, "steps": result.history[-1]["step"], "n_train": len(train_reqs),
        "n_val": min(len(val_reqs), cfg.val_size),
    })  # fmt: skip
    params = {**info, "config": str(config), "models_dir": str(models_dir), "device": device, "threads": threads}
    write_manifest(out, params, stable=True)
    write_run_log(run_log, params, {"seconds": seconds, "history_seconds": [
        {"step": r["step"], "seconds": r["seconds"]} for r in result.history]})  # fmt: skip
    log.info("MEND editor for %s: best step %d %s (%s, %.0f s)", model, result.best_step, result.best,
             result.stopped, seconds)  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="world-LM name or HF id / checkpoint folder")
    p.add_argument("--data-root", required=True, help="data tree (a built world or a real download)")
    p.add_argument("--train", required=True, help="training dataset name (core.data.trees.DATASETS)")
    p.add_argument(
        "--val",
        default=None,
        help="validation dataset name; default: hold out the last val_size train records",
    )
    p.add_argument("--config", required=True, help="MENDTrainConfig YAML")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--models-dir", default="data/models", help="folder of the world LMs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--run-log", default=None, help="JSON file for the run's timings and full manifest")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_training(model=a.model, data_root=a.data_root, train=a.train, val=a.val, config=a.config, out=a.out,
                 models_dir=a.models_dir, device=a.device, threads=a.threads, run_log=a.run_log)  # fmt: skip


if __name__ == "__main__":
    main()
