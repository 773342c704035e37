"""Pretrain a world LM from scratch on the world corpus and save it as an ordinary HF checkpoint.

`pretrain_world_lm(corpus, probes, cfg, out_dir)` trains a byte-level BPE tokenizer on the corpus,
builds a fresh `cfg.arch` model (config bos/eos/pad ids = the tokenizer's), trains it with
`core.models.training` (whole-sequence LM loss, AdamW, warmup + cosine), stops soon after trained
recall reaches the target, measures greedy recall on every probe kind, and writes the model
(safetensors), the tokenizer and `train_report.json`. The folder is assembled next to `out_dir`
and renamed into place, so a failed run never leaves a half checkpoint. It loads back with
`core.models.load_model` like any checkpoint.

The folder holds only what the inputs determine (weights, tokenizer, config, loss curve, recall,
package versions), so a rebuild from the same inputs has the same content hash and DVC does not
mark every downstream stage stale. What varies per run (minutes, timestamps of the loss curve,
machine load, git revision, platform) goes to a separate run log (`run_log`, `--run-log`).

CLI: `python -m core.models.pretrain --world-profile default --arch gpt2 --out data/models/world-gpt2
--run-log reports/world_lm/runs/world-gpt2.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import random
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from core.io import atomic_folder, package_versions, write_json, write_run_log
from core.models.arch import get_arch
from core.models.configs import make_config
from core.models.pretrain_config import PretrainConfig, pretrain_profile
from core.models.recall import recall_by_kind
from core.models.tokenizer import save_tokenizer, train_tokenizer
from core.models.training import train_causal_lm
from core.types import Probe

log = logging.getLogger(__name__)


def _sample(
    probe_sets: Mapping[str, Sequence[Probe]], kinds: Sequence[str], n: int, seed: int
) -> dict[str, list[Probe]]:
    rng = random.Random(seed)
    out = {}
    for kind in kinds:
        probes = list(probe_sets.get(kind, ()))
        out[kind] = probes if len(probes) <= n else rng.sample(probes, n)
    return out


def pretrain_world_lm(
    corpus: Sequence[str],
    probe_sets: Mapping[str, Sequence[Probe]],
    cfg: PretrainConfig,
    out_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    run_info: Mapping[str, Any] | None = None,
    run_log: str | Path | None = None,
) -> dict[str, Any]:
    """Train, evaluate and save one world LM into `out_dir`; returns the full train report.

    `run_info` (e.g. world profile and seed) is copied into the report. The folder gets
    `stable_report(report)`; `run_log`, when given, gets the whole report plus a run manifest.
    Same corpus, config and thread count -> same weights and folder, unless the time budget fires.
    """
    torch.set_num_threads(cfg.n_threads)
    start = time.perf_counter()
    spec = get_arch(cfg.arch)
    tok = train_tokenizer(
        corpus, cfg.vocab_size, add_bos=spec.tokenizer.add_bos, model_max_length=cfg.size.max_positions
    )
    tok.padding_side = spec.tokenizer.padding_side
    config = make_config(
        cfg.arch,
        len(tok),
        cfg.size,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(cfg.train.seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    n_params = sum(p.numel() for p in model.parameters())
    log.info("%s: %d params, %d texts, vocab %d", cfg.arch, n_params, len(corpus), len(tok))

    check = _sample(probe_sets, cfg.recall_kinds, cfg.recall_sample, cfg.train.seed)

    def callback(step: int) -> dict[str, float]:
        rec = recall_by_kind(model, tok, check, batch_size=cfg.recall_batch_size, device=device)
        log.info("step %d recall %s", step, {k: round(v, 3) for k, v in rec.items()})
        return {f"recall/{k}": v for k, v in rec.items()}

    def stop_when(metrics: dict[str, float]) -> bool:
        return all(metrics.get(f"recall/{k}", 0.0) >= cfg.recall_target for k in check)

    train_log = train_causal_lm(
        model, tok, corpus, cfg.train, device=device, callback=callback, stop_when=stop_when
    )
    t_eval = time.perf_counter()
    recall = recall_by_kind(model, tok, probe_sets, batch_size=cfg.recall_batch_size, device=device)
    log.info("final recall %s", {k: round(v, 4) for k, v in recall.items()})
    report = {
        "arch": cfg.arch,
        "config": dataclasses.asdict(cfg),
        "run_info": dict(run_info or {}),
        "n_params": n_params,
        "n_texts": len(corpus),
        "vocab_size": len(tok),
        "n_threads": cfg.n_threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_at_end": list(os.getloadavg()),  # other processes on the machine slow the run
        "steps": train_log.steps,
        "planned_steps": train_log.planned_steps,
        "stop_reason": train_log.stop_reason,
        "train_minutes": train_log.seconds / 60,
        "eval_minutes": (time.perf_counter() - t_eval) / 60,
        "total_minutes": (time.perf_counter() - start) / 60,
        "loss_curve": train_log.loss_curve,
        "recall_checks": train_log.evals,
        "recall": recall,
        "n_probes": {k: len(v) for k, v in probe_sets.items()},
        "packages": package_versions(),
    }
    _save(model, tok, stable_report(report), Path(out_dir))
    write_run_log(run_log, report["config"], {"report": report})
    return report


# report fields that change from run to run with the same inputs (time, machine load)
RUN_ONLY_FIELDS = ("omp_wait_policy", "load_average_at_end", "train_minutes", "eval_minutes", "total_minutes")


def stable_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """`report` without its run-dependent parts: RUN_ONLY_FIELDS and every row's `elapsed_s`."""
    out = {k: v for k, v in report.items() if k not in RUN_ONLY_FIELDS}
    for key in ("loss_curve", "recall_checks"):
        out[key] = [{k: v for k, v in row.items() if k != "elapsed_s"} for row in report[key]]
    return out


def _save(model: Any, tok: Any, report: dict[str, Any], out: Path) -> None:
    """Write checkpoint + report into a sibling temp folder, then swap it in for `out` (`atomic_folder`)."""
    with atomic_folder(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        save_tokenizer(tok, tmp)
        write_json(tmp / "train_report.json", report)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI entry point (see the module docstring)."""
    from core.world import build_world
    from core.world.corpus import pretraining_corpus
    from core.world.probes import recall_probes

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world-profile", default="default")
    p.add_argument("--world-seed", type=int, default=0)
    p.add_argument("--arch", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--run-log", type=Path, default=None, help="JSON file for the run's timings and manifest")
    p.add_argument("--seed", type=int, default=0, help="training seed (init and data order)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--time-budget-s", type=float, default=None, help="override the profile's budget")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = dataclasses.replace(
        pretrain_profile(args.world_profile, args.arch, seed=args.seed), n_threads=args.threads
    )
    if args.time_budget_s is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, time_budget_s=args.time_budget_s))
    world = build_world(args.world_profile, seed=args.world_seed)
    info = {"world_profile": args.world_profile, "world_seed": args.world_seed, "seed": args.seed}
    report = pretrain_world_lm(
        pretraining_corpus(world), recall_probes(world), cfg, args.out, device=args.device, run_info=info,
        run_log=args.run_log,
    )
    log.info("wrote %s: recall %s in %.1f min", args.out, report["recall"], report["total_minutes"])
    return report


def _exec_with_passive_omp() -> None:
    """Re-run this CLI with OMP_WAIT_POLICY=PASSIVE unless the variable is set.

    libgomp reads the variable when torch loads, so it cannot be set from inside the process. With
    the default (spinning) policy, two processes of 2 threads each on 2 shared cores run a training
    step ~17x slower (measured: 7.0 s vs 0.39 s); passive waiting removes that collapse.
    """
    if "OMP_WAIT_POLICY" not in os.environ:
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        os.execve(sys.executable, [sys.executable, "-m", "core.models.pretrain", *sys.argv[1:]], env)


if __name__ == "__main__":
    _exec_with_passive_omp()
    main()
