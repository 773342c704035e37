"""Names of the world LMs and resolving a model spec to (model, tokenizer).

A spec is either a world-LM name, `world-<arch>` (trained on the default world by the `world_lm`
DVC stage) or `world-<arch>-smoke` (trained on the smoke world in under a minute, on demand, so smoke
notebooks and tests run on a fresh clone), or anything `load_model` accepts: a Hugging Face id or a
local checkpoint folder. World LMs live in `<models_dir>/<name>/` as ordinary HF checkpoints.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from core.models.arch import ARCHS
from core.models.loading import load_model, load_tokenizer

log = logging.getLogger(__name__)

_WORLD_LM = re.compile(r"^world-(?P<arch>[a-z0-9]+)(?:-(?P<profile>smoke))?$")


def parse_world_lm(name: str) -> tuple[str, str] | None:
    """(arch, world profile) for a world-LM name, None for any other spec."""
    m = _WORLD_LM.match(name)
    if not m or m["arch"] not in ARCHS:
        return None
    return m["arch"], m["profile"] or "default"


def ensure_world_lm(name: str, models_dir: str | Path, *, seed: int = 0, threads: int = 2) -> Path:
    """The checkpoint folder of world LM `name`; smoke models are trained here when absent."""
    parsed = parse_world_lm(name)
    if parsed is None:
        raise ValueError(f"{name!r} is not a world-LM name (world-<arch>[-smoke], arch in {sorted(ARCHS)})")
    arch, profile = parsed
    path = Path(models_dir) / name
    if (path / "config.json").is_file():
        return path
    if profile != "smoke":
        raise FileNotFoundError(f"{path} does not exist: train it with `dvc repro world_lm@{arch}` "
                                f"(or `python -m core.models.pretrain --arch {arch} --out {path}`)")
    from core.models.pretrain import pretrain_world_lm
    from core.models.pretrain_config import pretrain_profile
    from core.world import build_world
    from core.world.corpus import pretraining_corpus
    from core.world.probes import recall_probes

    log.info("training %s on the smoke world into %s", name, path)
    world = build_world(profile, seed=0)
    cfg = pretrain_profile(profile, arch, seed=seed)
    cfg = type(cfg)(**{**cfg.__dict__, "n_threads": threads})
    pretrain_world_lm(pretraining_corpus(world), recall_probes(world), cfg, path,
                      run_info={"world_profile": profile, "world_seed": 0, "seed": seed})
    return path


def resolve_model(spec: str, *, models_dir: str | Path = "data/models", dtype: str = "float32",
                  device: str | torch.device = "cpu") -> tuple[Any, Any]:
    """Load `spec` (a world-LM name or any HF id/path) as (model, tokenizer) in eval mode."""
    path = ensure_world_lm(spec, models_dir) if parse_world_lm(spec) else spec
    return load_model(str(path), dtype=dtype, device=device)


def resolve_tokenizer(spec: str, *, models_dir: str | Path = "data/models") -> tuple[Any, Any]:
    """(tokenizer, config) of `spec` (a world-LM name or any HF id/path) without loading its weights."""
    path = ensure_world_lm(spec, models_dir) if parse_world_lm(spec) else spec
    return load_tokenizer(str(path))
