"""Benchmark entry point: evaluation vs raw forward throughput, seconds per edit and edit memory.

Run from the repository root: `python -m benchmarks.run [--models ...] [--n-edits N] ...` (see
benchmarks/README.md). For each model it measures, on the same model and requests: raw batched
forward throughput on the padded batches evaluation scores, `evaluate_requests` throughput on them
(one call, and one call per request), seconds per edit of every method in `METHODS` and one edit's
peak RSS growth. Writes `<out-dir>/<name>.json` (atomic) and `<out-dir>/<name>.md`, and prints the
Markdown.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers

from benchmarks.edits import measure_edit_memory, time_edits
from benchmarks.models import (
    BenchModel,
    load_bench_model,
    load_method_hparams,
    load_requests,
    parse_random,
    random_shape_hparams,
)
from benchmarks.report import reference_figures, render_markdown
from benchmarks.throughput import measure_throughput
from core.editors.base import resolve_module_name
from core.editors.registry import METHODS
from core.editors.rome_parts import layer_covariance
from core.io import atomic_write_text, git_revision, write_json
from core.models.world_lms import parse_world_lm
from core.types import EditRequest

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
RANDOM_SHAPES = ("random-4x128", "random-12x768")  # the reference's 7.4M and 124M (GPT-2-small) shapes
# The methods with reference figures (FT-L, ROME, MEMIT) and FT-M. ROME/MEMIT statistics for a random shape are
# computed (timed, reported apart) into a fresh temporary cache before the warm-up edit.
RANDOM_METHODS = ("FT-L", "FT-M", "ROME", "MEMIT")


def default_models(models_dir: str | Path) -> list[str]:
    """world-gpt2 / world-llama when trained (else world-gpt2-smoke), then the two reference shapes."""
    world = [n for n in ("world-gpt2", "world-llama") if (Path(models_dir) / n / "config.json").is_file()]
    return (world or ["world-gpt2-smoke"]) + list(RANDOM_SHAPES)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="world-LM names and/or random-<L>x<D> shapes (default: see README)",
    )
    p.add_argument(
        "--methods", nargs="+", default=sorted(METHODS), help="methods on world LMs (default: all)"
    )
    p.add_argument(
        "--random-methods",
        nargs="+",
        default=list(RANDOM_METHODS),
        help="methods on random shapes (default: FT-L FT-M ROME MEMIT, see README)",
    )
    p.add_argument(
        "--cov-samples", type=int, default=2000, help="corpus texts for ROME/MEMIT statistics on random shapes"
    )
    p.add_argument("--n-edits", type=int, default=5, help="timed edits per method (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed edits before the timed ones")
    p.add_argument("--n-eval", type=int, default=24, help="requests evaluated for throughput")
    p.add_argument("--eval-batch-size", type=int, default=32, help="scoring batch (EvalSettings default)")
    p.add_argument("--repeats", type=int, default=3, help="timed raw/eval rounds (median)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--no-memory", action="store_true", help="skip the per-edit memory subprocesses")
    p.add_argument(
        "--random-world",
        default=None,
        help="world profile for random shapes (default: the first world LM's, else smoke)",
    )
    p.add_argument("--world-root", default=str(REPO / "data" / "world"))
    p.add_argument("--models-dir", default=str(REPO / "data" / "models"))
    p.add_argument("--hparams-dir", default=str(REPO / "papers" / "knowedit" / "hparams"))
    p.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--name", default="latest", help="output stem: <out-dir>/<name>.json and .md")
    p.add_argument("--seed", type=int, default=0, help="random-shape weights seed")
    return p.parse_args(argv)  # fmt: skip


def _machine(threads: int) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "threads": threads, "git": git_revision(REPO),
        "load_start": list(os.getloadavg()),
        # PASSIVE (the Makefile's, for shared machines) makes each small op wait for sleeping threads: the
        # world LMs' edits take ~3-4x longer with 2 threads than under the OpenMP default
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
    }  # fmt: skip


def _relative(value: Any) -> Any:
    """Paths under the repository as repository-relative strings (results carry no machine paths)."""
    if isinstance(value, str) and Path(value).is_absolute() and Path(value).is_relative_to(REPO):
        return os.path.relpath(value, REPO)
    return value


def bench_model(spec: str, args: argparse.Namespace, random_world: str) -> dict[str, Any]:
    """All measurements on one model (see the module docstring)."""
    bench = load_bench_model(spec, models_dir=args.models_dir, random_world=random_world, seed=args.seed)
    n_layers = bench.model.config.num_hidden_layers
    n_req = max(args.n_eval, args.warmup + args.n_edits)
    requests = load_requests(args.world_root, bench.world_profile, n_req)
    log.info("%s: %.1fM parameters, %d requests from the %s world", spec, bench.n_params / 1e6, n_req,
             bench.world_profile)  # fmt: skip
    throughput = [
        measure_throughput(bench.model, bench.tok, requests[: args.n_eval], per_request=per_request,
                           batch_size=args.eval_batch_size, repeats=args.repeats)
        for per_request in (False, True)
    ]  # fmt: skip
    methods = args.random_methods if parse_random(spec) else args.methods
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as stats_dir:
        edits = [_bench_method(bench, method, requests, args, random_world, stats_dir) for method in methods]
    return {
        "spec": spec, "n_params": bench.n_params, "world_profile": bench.world_profile,
        "tokenizer_vocab": len(bench.tok), "model_vocab": bench.model.config.vocab_size,
        "n_layers": n_layers, "throughput": throughput, "edits": edits,
    }  # fmt: skip


def _bench_method(
    bench: BenchModel,
    method: str,
    requests: Sequence[EditRequest],
    args: argparse.Namespace,
    random_world: str,
    stats_dir: str,
) -> dict[str, Any]:
    """Seconds per edit and memory of one method; a method without hparams, or failing, is recorded.

    On a random shape, ROME/MEMIT statistics are computed first into `stats_dir` (a fresh folder per
    model), timed per module and reported under "covariance"; the timed edits then read them cached.
    """
    try:
        hp, path = load_method_hparams(
            method, bench.spec, bench.model.config.num_hidden_layers, args.hparams_dir
        )
    except FileNotFoundError as e:
        log.warning("skipping %s on %s: %s", method, bench.spec, e)
        return {"method": method, "skipped": str(e)}
    covariance = []
    if parse_random(bench.spec) is not None:
        hp = random_shape_hparams(hp, stats_dir=stats_dir, cov_samples=args.cov_samples)
        covariance = _time_covariances(bench, hp)
    try:
        e = time_edits(bench.model, bench.tok, requests, method, hp, n=args.n_edits, warmup=args.warmup,
                       floor=parse_random(bench.spec) is not None)  # fmt: skip
        if not args.no_memory:
            e["memory"] = measure_edit_memory(
                bench.spec, method, models_dir=args.models_dir, world_root=args.world_root,
                hparams_dir=args.hparams_dir, random_world=random_world, threads=args.threads, seed=args.seed,
                stats_dir=stats_dir, cov_samples=args.cov_samples,
            )  # fmt: skip
    except Exception as err:  # a benchmark of several methods reports a failing one and goes on
        log.exception("%s on %s failed", method, bench.spec)
        return {"method": method, "skipped": f"failed: {type(err).__name__}: {err}"}
    return {**e, "hparams": _relative(str(path)), **({"covariance": covariance} if covariance else {})}


def _time_covariances(bench: BenchModel, hp: Any) -> list[dict[str, Any]]:
    """Seconds to compute (or read, when an earlier method cached it) each edited module's statistic."""
    if not getattr(hp, "mom2_adjustment", False):
        return []
    out = []
    for layer in hp.layers:
        name = resolve_module_name(bench.model, hp.rewrite_module_tmp, layer)
        start = time.perf_counter()
        layer_covariance(bench.model, bench.tok, name, hp)
        out.append({"module": name, "n_samples": hp.mom2_n_samples, "seconds": time.perf_counter() - start})
        log.info("%s covariance on %s: %.1f s", name, bench.spec, out[-1]["seconds"])
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmarks, write the JSON and Markdown results, print the Markdown; returns the result."""
    args = parse_args(argv)
    start, threads_before = time.perf_counter(), torch.get_num_threads()
    specs = args.models or default_models(args.models_dir)
    world_lms = [parse_world_lm(s) for s in specs if parse_random(s) is None]
    random_world = args.random_world or next((p[1] for p in world_lms if p), "smoke")
    machine = _machine(args.threads)
    torch.set_num_threads(args.threads)
    try:
        models = [bench_model(spec, args, random_world) for spec in specs]
    finally:
        torch.set_num_threads(threads_before)
    machine["load_end"] = list(os.getloadavg())
    result = {
        "name": args.name, "machine": machine, "reference": reference_figures(), "models": models,
        "settings": {k: _relative(v) for k, v in vars(args).items() if k not in ("out_dir", "name")},
        "seconds": time.perf_counter() - start,
    }  # fmt: skip
    result["settings"]["models"] = specs
    out = Path(args.out_dir)
    write_json(out / f"{args.name}.json", result)
    markdown = render_markdown(result)
    atomic_write_text(out / f"{args.name}.md", markdown)
    sys.stdout.write(markdown)
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main()
