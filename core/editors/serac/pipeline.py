"""File-level SERAC training: base model + data tree in, archive (or pretrained counterfactual LM) folder out.

`train_serac` (the registry's `Method.train` for "SERAC") reads the base model's tokenizer (a world-LM
name or any `load_model` path; world LMs are found under `models_dir`), the train splits named by the
config and the world corpus under `data_root`, runs `core.editors.serac.train.build_archive` and writes
the archive atomically. `pretrain_cf_only` writes just the world-corpus-pretrained counterfactual LM (an
HF folder plus `cf_lm.json` with its vocabulary fingerprint and pretraining settings); passing that
folder as `cf_init` skips pretraining, so base models sharing a vocabulary (world-gpt2 and world-llama
differ only in the BOS policy) share one pretraining run (`check_cf_init` refuses a folder pretrained for
another vocabulary or with other pretraining settings). `cf_init` may also be any pretrained causal LM
sharing the base's vocabulary (the paper profile; `load_cf_init`). CLI: `python -m core.editors.serac_train`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from core.config import load_hparams
from core.data import read_requests
from core.data.trees import dataset_file
from core.editors.serac.archive import save_archive, vocab_fingerprint
from core.editors.serac.train import (
    PRETRAIN_FIELDS,
    SERACTrainConfig,
    build_archive,
    new_pretrained_cf,
)
from core.io import atomic_folder, read_jsonl, split_timings, write_json, write_manifest, write_run_log
from core.models.loading import load_model
from core.models.recall import recall_by_kind
from core.models.tokenizer import save_tokenizer
from core.models.world_lms import resolve_tokenizer
from core.types import EditRequest, Probe

log = logging.getLogger(__name__)

CF_LM_FILE = "cf_lm.json"


def read_datasets(data_root: str | Path, names: Sequence[str]) -> dict[str, list[EditRequest]]:
    """The requests of each named dataset under `data_root` (core.data.trees names)."""
    return {n: read_requests(*dataset_file(data_root, n)) for n in names}


def read_corpus(data_root: str | Path) -> list[str]:
    """The world's pretraining corpus (`<data_root>/corpus.jsonl`, one {"text": ...} per line)."""
    path = Path(data_root) / "corpus.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (a world tree written by core.world.build has it)")
    return [row["text"] for row in read_jsonl(path)]


def check_cf_init(tok, cf_info: Mapping[str, Any], cfg: SERACTrainConfig, source: str) -> None:
    """The pretrained h in `source` must share the tokenizer's vocabulary and the pretraining fields."""
    if cf_info.get("vocab_fingerprint") != vocab_fingerprint(tok):
        raise ValueError(
            f"{source}: pretrained for vocabulary {cf_info.get('vocab_fingerprint')}, the model's "
            f"tokenizer has {vocab_fingerprint(tok)}"
        )
    theirs = cf_info.get("config", {})
    diff = {f: (theirs.get(f), getattr(cfg, f)) for f in PRETRAIN_FIELDS if theirs.get(f) != getattr(cfg, f)}
    if diff:
        raise ValueError(
            f"{source}: pretraining settings differ from the training config (theirs, ours): {diff}"
        )


def load_cf_init(tok, cfg: SERACTrainConfig, cf_init: str | Path, device: str | torch.device):
    """h from `cf_init`: a `pretrain_cf_only` folder (checked by `check_cf_init`), or else any pretrained
    causal LM (hub id or folder) whose tokenizer has the base model's vocabulary, used as is (the paper
    profile: SERAC's h is a small pretrained LM of the base's family, e.g. EasyEdit's llama-160m for
    LLaMA bases). The config's cf_*/pretrain_* fields are then unused."""
    meta = Path(cf_init) / CF_LM_FILE
    if meta.is_file():
        check_cf_init(tok, json.loads(meta.read_text(encoding="utf-8")), cfg, str(cf_init))
        return AutoModelForCausalLM.from_pretrained(cf_init).to(device)
    cf, cf_tok = load_model(cf_init, device=device)
    if vocab_fingerprint(cf_tok) != vocab_fingerprint(tok):
        raise ValueError(
            f"{cf_init}: the counterfactual LM's tokenizer has another vocabulary than the base model's "
            f"({vocab_fingerprint(cf_tok)} vs {vocab_fingerprint(tok)}); SERAC's h must share token ids"
        )
    log.info("counterfactual LM from %s (pretrained, not trained on the corpus)", cf_init)
    return cf


def cf_recall(cf, tok, data_root: str | Path, n: int = 300, seed: int = 0) -> dict[str, float]:
    """Greedy recall of h on `n` sampled probes of each kind in `<data_root>/probes.json` (what h knows)."""
    path = Path(data_root) / "probes.json"
    if not path.is_file():
        return {}
    rng = random.Random(seed)
    sets = {
        k: [Probe(p["prompt"], p["answer"]) for p in v]
        for k, v in json.loads(path.read_text(encoding="utf-8")).items()
    }
    sample = {k: v if len(v) <= n else rng.sample(v, n) for k, v in sorted(sets.items())}
    return recall_by_kind(cf, tok, sample)


def _base_tokenizer(model: str, models_dir: str | Path) -> tuple[Any, int]:
    """(tokenizer, number of output logits = config.vocab_size) of the base model; its weights are not loaded."""
    tok, config = resolve_tokenizer(model, models_dir=models_dir)
    return tok, int(config.vocab_size)


def train_serac(
    model: str,
    data_root: str | Path,
    config: SERACTrainConfig | str | Path,
    out_dir: str | Path,
    *,
    models_dir: str | Path = "data/models",
    cf_init: str | Path | None = None,
    seed: int = 0,
    device: str = "cpu",
    threads: int = 1,
    embedding_cache_dir: str | Path | None = None,
    run_log: str | Path | None = None,
) -> dict[str, Any]:
    """Train and write the SERAC archive for `model` (see the module docstring); returns the train report.

    The archive's report and manifest leave out timings and the git revision (`core.io.split_timings`,
    stable manifest), so retraining with equal inputs gives an equal folder; `run_log` gets those.
    """
    torch.set_num_threads(threads)
    cfg = config if isinstance(config, SERACTrainConfig) else load_hparams(config, SERACTrainConfig)
    tok, vocab_size = _base_tokenizer(model, models_dir)
    datasets = read_datasets(data_root, cfg.train_datasets)
    cf, corpus = None, []
    if cf_init is not None:
        cf = load_cf_init(tok, cfg, cf_init, device)
    else:
        corpus = read_corpus(data_root)
    archive, report = build_archive(
        tok,
        vocab_size,
        datasets,
        cfg,
        seed=seed,
        cf_model=cf,
        corpus=corpus,
        device=device,
        source=str(out_dir),
        embedding_cache_dir=embedding_cache_dir,
    )
    report["cf_recall_after_finetune"] = cf_recall(archive.cf_model, tok, data_root, seed=seed)
    run = {
        "model": model,
        "data_root": str(data_root),
        "cf_init": str(cf_init) if cf_init else None,
        "seed": seed,
        "threads": threads,
        "config": dataclasses.asdict(cfg),
    }
    stable, timings = split_timings({**report, "run": run})
    save_archive(out_dir, archive, tok, stable, run)
    write_run_log(run_log, run, timings)
    log.info("wrote SERAC archive %s", out_dir)
    return report


def pretrain_cf_only(
    model: str,
    data_root: str | Path,
    config: SERACTrainConfig | str | Path,
    out_dir: str | Path,
    *,
    models_dir: str | Path = "data/models",
    seed: int = 0,
    device: str = "cpu",
    threads: int = 1,
    run_log: str | Path | None = None,
) -> dict[str, Any]:
    """Pretrain the counterfactual LM on the world corpus; write it (HF folder + cf_lm.json) to `out_dir`.

    Timings go to `run_log`, not into the folder (as `train_serac`).
    """
    torch.set_num_threads(threads)
    cfg = config if isinstance(config, SERACTrainConfig) else load_hparams(config, SERACTrainConfig)
    tok, vocab_size = _base_tokenizer(model, models_dir)
    cf, info = new_pretrained_cf(tok, vocab_size, read_corpus(data_root), cfg, seed=seed, device=device)
    info["recall"] = cf_recall(cf, tok, data_root, seed=seed)
    log.info("pretrained counterfactual LM recall: %s", info["recall"])
    meta = {
        "vocab_fingerprint": vocab_fingerprint(tok),
        "config": {f: getattr(cfg, f) for f in PRETRAIN_FIELDS},
        "tokenizer_from": model,
        "seed": seed,
        "threads": threads,
        **info,
    }
    params = {"model": model, "data_root": str(data_root), **meta["config"], "seed": seed}
    stable, timings = split_timings(meta)
    with atomic_folder(out_dir) as tmp:
        cf.save_pretrained(tmp, safe_serialization=True)
        save_tokenizer(tok, tmp)
        write_json(tmp / CF_LM_FILE, stable)
        write_manifest(tmp, params, stable=True)
    write_run_log(run_log, params, timings)
    log.info("wrote pretrained counterfactual LM %s (%d steps)", out_dir, info["pretrain_steps"])
    return meta
