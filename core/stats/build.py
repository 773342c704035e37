"""Precompute the key covariance of every MLP output projection of a model into a stats folder.

    python -m core.stats.build --model world-gpt2 --models-dir data/models \
        --corpus world:default:0 --n-samples 20000 --dtype float32 --out data/stats/world-gpt2

This is the DVC stage that makes ROME/MEMIT's second-moment statistics (ROME Eq. 2, MEMIT Eq. 14) a
tracked output: the files land exactly where `core.stats.cached_layer_cov` looks for them (the path
encodes model id and weights hash, module, corpus, sample count, max length and dtype), so runs whose
hparams name the same `stats_dir`, `mom2_dataset`, `mom2_n_samples` and `mom2_dtype` only read them.
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from core.io import write_json
from core.models.arch import get_arch
from core.models.world_lms import resolve_model
from core.stats.corpus import corpus_texts
from core.stats.covariance import (
    COV_MAX_LENGTH,
    DTYPES,
    compute_layer_covs,
    layer_cov_file,
    load_or_compute_cov,
)

log = logging.getLogger(__name__)


def build_stats(
    model, tok, *, layers: list[int], corpus: str, n_samples: int, dtype: str, out: str
) -> list[dict[str, object]]:
    """Compute (or find) the covariance of each layer's MLP output projection; one summary row per layer.

    The layers not yet cached are computed together in one pass over the corpus (`compute_layer_covs`),
    each written atomically where `cached_layer_cov` reads it. Rows hold no timings (they are logged),
    so the stage output depends only on its inputs.
    """
    template = get_arch(model).mlp_out
    names = [template.format(layer) for layer in layers]
    paths = {}
    for name in names:
        paths[name] = layer_cov_file(
            model, name, dataset=corpus, n_samples=n_samples, dtype=dtype, stats_dir=out
        )
        if paths[name] is None:
            raise ValueError(
                f"model {model.config._name_or_path!r} has no name or path to key the statistics"
            )
    missing = [name for name in names if not paths[name].is_file()]
    covs = {}
    if missing:
        start = time.perf_counter()
        covs = compute_layer_covs(model, tok, missing, corpus_texts(corpus, n_samples), max_length=COV_MAX_LENGTH,
                                  dtype=DTYPES[dtype])  # fmt: skip
        log.info("%d layers in one pass: %.1f s", len(missing), time.perf_counter() - start)
    rows = []
    for layer, name in zip(layers, names, strict=True):
        cov = load_or_compute_cov(paths[name], lambda name=name: covs[name])  # writes the new ones atomically
        rows.append({"layer": layer, "module": name, "path": str(paths[name]), "dim": int(cov.shape[0]),
                     "trace": float(cov.double().trace())})  # fmt: skip
        log.info("layer %d: %s", layer, paths[name])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="world-LM name, HF id or local path")
    parser.add_argument("--models-dir", default="data/models")
    parser.add_argument("--layers", type=int, nargs="*", default=None, help="default: every layer")
    parser.add_argument("--corpus", required=True, help="core.stats.corpus name, e.g. world:default:0")
    parser.add_argument("--n-samples", type=int, required=True)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    model, tok = resolve_model(args.model, models_dir=args.models_dir)
    layers = args.layers if args.layers is not None else list(range(model.config.num_hidden_layers))
    rows = build_stats(model, tok, layers=layers, corpus=args.corpus, n_samples=args.n_samples, dtype=args.dtype,
                       out=args.out)  # fmt: skip
    write_json(f"{args.out}/index.json", {"model": args.model, "corpus": args.corpus, "n_samples": args.n_samples,
                                          "dtype": args.dtype, "layers": rows})  # fmt: skip


if __name__ == "__main__":
    main()
