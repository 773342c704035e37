"""Covariance statistics of layer keys (ROME/MEMIT): pure computation, named corpora, path-keyed cache."""

from core.stats.corpus import corpus_texts
from core.stats.covariance import (
    COV_MAX_LENGTH,
    DTYPES,
    cached_layer_cov,
    compute_layer_cov,
    compute_layer_covs,
    cov_cache_path,
    layer_cov_file,
    load_or_compute_cov,
    model_identity,
)

__all__ = [
    "COV_MAX_LENGTH",
    "DTYPES",
    "cached_layer_cov",
    "compute_layer_cov",
    "compute_layer_covs",
    "corpus_texts",
    "cov_cache_path",
    "layer_cov_file",
    "load_or_compute_cov",
    "model_identity",
]
