"""On-disk cache of pre-edit outputs, keyed by a hash of everything that determines them.

Answers easyedit-notes §10.11 (pre-edit metrics recomputed for every run; users ask for a shared
`pre_edit.json`) without its pitfalls: the key hashes the model identity (name/path, class, the
device type and a fingerprint of every parameter and buffer value), the tokenizer (its serialised
backend, padding side and special tokens), the requests (every field), and the evaluation settings,
plus a format version. The cache folder is an explicit argument (no CWD paths, no module globals);
files are written atomically (`core.io.write_json`), and a hit returns exactly what recomputation
returns (ids are ints; floats round-trip through JSON exactly).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.eval.evaluate import EvalSettings, PreEditOutputs, compute_pre_edit
from core.io import write_json
from core.types import EditRequest, Probe

log = logging.getLogger(__name__)

CACHE_FORMAT = "palimpsest/pre_edit/v2"  # bump when PreEditOutputs or its computation changes


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 over every parameter and buffer: name, dtype, shape and raw bytes (tied weights once)."""
    h = hashlib.sha256()
    for name, t in [*model.named_parameters(), *model.named_buffers()]:  # both skip duplicates
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        flat = t.detach().contiguous().reshape(-1).cpu()
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_identity(model: nn.Module) -> dict[str, str]:
    """Name/path, class, model type, device type and weights fingerprint of `model`."""
    config = getattr(model, "config", None)
    return {
        "name_or_path": str(getattr(model, "name_or_path", getattr(config, "_name_or_path", ""))),
        "class": type(model).__name__,
        "model_type": str(getattr(config, "model_type", "")),
        "device_type": next(model.parameters()).device.type,
        "weights": weights_fingerprint(model),
    }


def tokenizer_identity(tok) -> dict[str, str]:
    """Class, padding side, special tokens and a hash of the serialised tokenizer (vocab, merges, rules)."""
    backend = getattr(tok, "backend_tokenizer", None)
    spec = backend.to_str() if backend is not None else json.dumps(sorted(tok.get_vocab().items()))
    return {
        "class": type(tok).__name__,
        "name_or_path": str(getattr(tok, "name_or_path", "")),
        "padding_side": str(getattr(tok, "padding_side", "")),
        "special_tokens": json.dumps(tok.special_tokens_map, sort_keys=True, default=str),
        "spec_sha256": hashlib.sha256(spec.encode()).hexdigest(),
    }


def _probes(m: Mapping[str, Sequence[Probe]]) -> dict[str, list[list[str]]]:
    return {k: [[p.prompt, p.answer] for p in v] for k, v in m.items()}


def request_to_json(r: EditRequest) -> dict[str, Any]:
    """Every field of a request as JSON-ready data (extras stringified where not JSON)."""
    return {
        "case_id": r.case_id,
        "prompt": r.prompt,
        "subject": r.subject,
        "target_new": r.target_new,
        "ground_truth": r.ground_truth,
        "rephrases": list(r.rephrases),
        "locality": _probes(r.locality),
        "portability": _probes(r.portability),
        "extras": json.loads(json.dumps(dict(r.extras), sort_keys=True, default=str)),
    }


def pre_edit_key(
    model: nn.Module, tok, requests: Sequence[EditRequest], settings: EvalSettings, suite: str = "facts"
) -> dict[str, Any]:
    """The key components and their combined hash under "key"."""
    parts = {
        "format": CACHE_FORMAT,
        "suite": suite,
        "model": model_identity(model),
        "tokenizer": tokenizer_identity(tok),
        "requests_sha256": _sha([request_to_json(r) for r in requests]),
        "settings": asdict(settings),
    }
    return {**parts, "key": _sha(parts)}


def cache_path(cache_dir: str | Path, key: str) -> Path:
    """Where the entry for `key` lives inside `cache_dir`."""
    return Path(cache_dir) / f"pre_edit-{key[:32]}.json"


def load_or_compute_pre_edit(
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    settings: EvalSettings,
    cache_dir: str | Path | None,
    *,
    suite: str = "facts",
    compute: Callable[
        [nn.Module, Any, Sequence[EditRequest], EvalSettings], PreEditOutputs
    ] = compute_pre_edit,
) -> PreEditOutputs:
    """Pre-edit outputs of the unedited `model`, read from `cache_dir` on a hit, else computed and stored.

    `compute` is the suite's pre-edit function and `suite` its name (part of the key). With
    `cache_dir=None` nothing is read or written.
    """
    if cache_dir is None:
        return compute(model, tok, requests, settings)
    key = pre_edit_key(model, tok, requests, settings, suite)
    path = cache_path(cache_dir, key["key"])
    if path.exists():
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry.get("key") == key:
            log.info("pre-edit cache hit: %s", path)
            return PreEditOutputs.from_json(entry["outputs"])
        log.warning("pre-edit cache entry %s has a different key; recomputing", path)
    pre = compute(model, tok, requests, settings)
    write_json(path, {"key": key, "outputs": pre.to_json()})
    log.info("pre-edit cache written: %s", path)
    return pre
