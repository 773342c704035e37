"""Layer covariance statistics for ROME and MEMIT: C = E[k k^T] of an MLP output projection's input.

ROME (Meng et al. 2022, Eq. 2) and MEMIT (Meng et al. 2023, Eq. 14-15) precondition their updates with
the UNCENTRED second moment of the keys k (the input to W_out) over a text corpus (ROME's
`layer_stats`, easyedit-notes §4). `compute_layer_covs` is pure: it runs the model on `texts` in padded
batches, reads the key of every non-pad token with forward pre-hooks that STOP the pass once the last
requested module is reached (layers above never run; lower layers run once for all modules), and
returns sum(k k^T) / n_tokens per module.

Caching (house style 4.6): `cov_cache_path` encodes every input that changes the value
(`<root>/<org>--<model>@<rev>/<module>/<corpus>-n<N>[-len<L>]-<dtype>.pt`, fixing ROME's key bugs), and
`load_or_compute_cov` loads that file or computes and writes it atomically. No in-process globals.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from core.hooks import capture_inputs, run_until
from core.io import atomic_torch_save
from core.models.arch import get_arch
from core.models.inputs import encode_batch

log = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def compute_layer_covs(
    model: nn.Module,
    tok,
    module_names: Sequence[str],
    texts: Iterable[str],
    *,
    batch_size: int = 32,
    max_length: int = 256,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """E[k k^T] (d_in, d_in) of the input k to each module in `module_names`, from ONE pass over `texts`.

    Each batch runs up to the last of the modules (the pass stops there), so the layers below are
    computed once for all of them; every module sees exactly the keys it would see alone, summed in the
    same order, so each result equals `compute_layer_cov` of that module bit for bit. Non-pad tokens
    only; sums in float64, returned in `dtype`.
    """
    if not module_names:
        raise ValueError("no modules to compute a covariance for")
    modules = {name: model.get_submodule(name) for name in module_names}
    device = device if device is not None else next(model.parameters()).device
    totals: dict[str, torch.Tensor] = {}
    count = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal count
        enc = encode_batch(tok, batch, device, padding_side=tok.padding_side)
        enc = {
            k: v[:, :max_length] if tok.padding_side == "right" else v[:, -max_length:]
            for k, v in enc.items()
        }
        mask = enc["attention_mask"].bool()
        with torch.no_grad(), capture_inputs(modules, stop=True) as boxes:
            run_until(lambda: model(**enc))
        for name, box in boxes.items():
            if box.value is None:
                raise RuntimeError(f"module {name!r} was not called in the forward pass")
            keys = box.value[mask].to(torch.float64)  # (n_tokens, d_in)
            outer = keys.T @ keys
            totals[name] = outer if name not in totals else totals[name] + outer
        count += int(mask.sum())

    for text in texts:
        batch.append(text)
        if len(batch) == batch_size:
            flush()
            batch = []
    if batch:
        flush()
    if count == 0:
        raise ValueError("no tokens to compute a covariance from")
    log.info("covariance of %s from %d tokens", ", ".join(module_names), count)
    return {name: (total / count).to(dtype) for name, total in totals.items()}


def compute_layer_cov(
    model: nn.Module,
    tok,
    layer: int | str,
    texts: Iterable[str],
    *,
    module_template: str | None = None,
    **kwargs,
) -> torch.Tensor:
    """E[k k^T] of the input to one projection (`compute_layer_covs` of a single module).

    `layer` is a layer index (module `module_template.format(layer)`, default the arch's MLP output
    projection) or a full module name; `kwargs` as `compute_layer_covs`.
    """
    if isinstance(layer, str):
        module_name = layer
    else:
        module_name = (module_template or get_arch(model).mlp_out).format(layer)
    return compute_layer_covs(model, tok, [module_name], texts, **kwargs)[module_name]


def _clean(part: str) -> str:
    return part.strip("/").replace("/", "--").replace(":", "-") or "unnamed"


def cov_cache_path(
    root: str | Path,
    model_id: str,
    revision: str,
    layer: str | int,
    corpus_name: str,
    n_samples: int,
    dtype: str,
    *,
    max_length: int | None = None,
) -> Path:
    """`root/<org>--<model>@<rev>/<layer>/<corpus>-n<N>[-len<L>]-<dtype>.pt`; every argument is in the path.

    `layer` may be the module name (e.g. "transformer.h.2.mlp.c_proj"), which also encodes the template.
    """
    length = f"-len{max_length}" if max_length is not None else ""
    name = f"{_clean(corpus_name)}-n{n_samples}{length}-{dtype}.pt"
    return Path(root) / f"{_clean(model_id)}@{_clean(revision)}" / str(layer) / name


def load_or_compute_cov(path: str | Path, compute_fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The tensor saved at `path`, or `compute_fn()` written there atomically (`core.io.atomic_torch_save`)."""
    path = Path(path)
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    value = compute_fn()
    atomic_torch_save(value.detach().cpu(), path)
    log.info("saved covariance %s", path)
    return value


@lru_cache(maxsize=32)
def _files_digest(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    """sha256 (12 hex) of the weight files in `folder`; `stamp` (name, size, mtime) is part of the key."""
    h = hashlib.sha256()
    for name, _, _ in stamp:
        with open(Path(folder) / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                h.update(chunk)
    return h.hexdigest()[:12]


def model_identity(model: nn.Module) -> tuple[str, str]:
    """(model_id, revision) for cache paths: a hub id and its commit, or a local folder and its weights' hash.

    The revision ends with a hash of the first 64k input-embedding values of the model in memory, so a folder
    whose files were rewritten after loading (or a hub id without a commit) cannot alias another model.

    Raises ValueError for a model built in code (no name): give it a path, or compute in memory.
    """
    name = str(getattr(model.config, "_name_or_path", "") or getattr(model, "name_or_path", "") or "")
    if not name:
        raise ValueError("model has no name_or_path: cannot key a covariance cache (set stats_dir: null)")
    emb = model.get_input_embeddings().weight.detach().reshape(-1)[:65536].float().cpu().numpy().tobytes()
    tag = hashlib.sha256(emb).hexdigest()[
        :8
    ]  # the in-memory weights, in case the files changed since loading
    folder = Path(name)
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
        stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
        return folder.resolve().name, f"{_files_digest(str(folder.resolve()), stamp)}-{tag}"
    return name, f"{getattr(model.config, '_commit_hash', None) or 'main'}-{tag}"


COV_MAX_LENGTH = 256  # tokens per corpus text for the statistics (ROME truncates to the model's context)


def layer_cov_file(
    model: nn.Module,
    module_name: str,
    *,
    dataset: str,
    n_samples: int,
    dtype: str,
    stats_dir: str | Path | None,
    max_length: int = COV_MAX_LENGTH,
) -> Path | None:
    """The file `cached_layer_cov` reads or writes for these arguments; None when it computes in memory
    (no `stats_dir`, or a model built in code with no name to key a cache)."""
    if stats_dir is None:
        return None
    try:
        model_id, revision = model_identity(model)
    except ValueError:
        return None
    return cov_cache_path(
        stats_dir, model_id, revision, module_name, dataset, n_samples, dtype, max_length=max_length
    )


def cached_layer_cov(
    model: nn.Module,
    tok,
    module_name: str,
    *,
    dataset: str,
    n_samples: int,
    dtype: str,
    stats_dir: str | Path | None,
    max_length: int = COV_MAX_LENGTH,
) -> torch.Tensor:
    """E[k k^T] of `module_name`'s input over corpus `dataset` (CPU, `dtype`), through the path-keyed cache.

    With `stats_dir` the value is read from (or computed into) `cov_cache_path(...)`, keyed by the model's
    identity (hub id + commit, or local folder + weights hash), so it is the UNEDITED model's statistic
    whatever edits follow. With `stats_dir=None`, or for a model built in code (no name to key a cache;
    logged), it is computed in memory from the model as it is now.
    """
    from core.stats.corpus import corpus_texts

    def compute() -> torch.Tensor:
        texts = corpus_texts(dataset, n_samples)
        return compute_layer_cov(model, tok, module_name, texts, max_length=max_length, dtype=DTYPES[dtype])

    path = layer_cov_file(
        model, module_name, dataset=dataset, n_samples=n_samples, dtype=dtype, stats_dir=stats_dir,
        max_length=max_length,
    )  # fmt: skip
    if path is None:
        if stats_dir is not None:
            log.warning("model has no name or path: computing the covariance in memory, not cached")
        return compute()
    return load_or_compute_cov(path, compute)
