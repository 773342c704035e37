"""Seconds per edit (single-edit protocol, edit only) and the peak memory of one edit.

Timing: for each request, `undo = method.edit(model, tok, [request], hp)` is timed alone (evaluation and
the undo are outside the clock), then undone, so every edit starts from the original weights as in the
single-edit protocol. The first `warmup` edits are dropped; the figure is the median of the next `n`.
A forward pre-hook on the decoder stack (`model.base_model`) counts its passes per edit, full or partial
(the optimisation loops of FT, ROME and MEMIT run the stack from the first block they can change, one
pass per step taken, plus the passes that read keys and the frozen bottom). Optionally the timed
requests are edited again, untimed, to record every linear layer's products for the matrix-product
floor (`benchmarks.floor`). Process CPU
seconds are kept beside wall seconds: with one thread they barely move when other processes compete.

Memory: tracemalloc cannot see tensor memory (torch allocates outside Python's allocator), and
`ru_maxrss` is a lifetime high-water mark that model loading may already have set. So each (model,
method) runs in a fresh spawned process: load the model, one no-grad forward, then one edit while a
thread samples the resident set size (RSS, /proc/self/statm) every millisecond; the figure is the peak
RSS above the RSS just before the edit. A fresh process matters: after a first edit the C allocator
keeps freed pages, and a second edit would show almost no growth.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.floor import ProductCalls, floor_seconds
from core.editors.registry import get_method
from core.types import EditRequest

log = logging.getLogger(__name__)

MB = 1024 * 1024


def time_edits(
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    method: str,
    hp: Any,
    *,
    n: int,
    warmup: int = 1,
    floor: bool = False,
) -> dict[str, Any]:
    """Median seconds per single edit over `n` edits after `warmup` untimed ones (requests used in order).

    With `floor`, the timed requests are edited once more, untimed, with `ProductCalls` hooks on every
    linear layer, and the products replayed (`benchmarks.floor`): `floor_s` per edit, its median.
    """
    if len(requests) < warmup + n or n < 1:
        raise ValueError(f"need n >= 1 and warmup + n <= {len(requests)} requests, got {warmup} + {n}")
    edit = get_method(method).edit
    calls = [0]
    hook = model.base_model.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    times, cpu_times, forwards = [], [], []
    try:
        for i, r in enumerate(requests[: warmup + n]):
            calls[0] = 0
            t0, c0 = time.perf_counter(), time.process_time()
            undo = edit(model, tok, [r], hp)
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
            undo()
            if i >= warmup:
                times.append(seconds)
                cpu_times.append(cpu_seconds)
                forwards.append(calls[0])
    finally:
        hook.remove()
    out = {
        "method": method, "n": n, "warmup": warmup, "seconds": times, "cpu_seconds": cpu_times,
        "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
        "median_cpu_s": statistics.median(cpu_times), "passes_per_edit": statistics.median(forwards),
    }  # fmt: skip
    if floor:
        out["floor_s"] = _floors(model, tok, requests[warmup : warmup + n], edit, hp)
        out["median_floor_s"] = statistics.median(out["floor_s"])
    log.info("%s: %.3f s/edit (median of %d), %s decoder passes/edit", method, out["median_s"], n,
             out["passes_per_edit"])  # fmt: skip
    return out


def _floors(model: nn.Module, tok, requests: Sequence[EditRequest], edit, hp: Any) -> list[float]:
    """The matrix-product floor of each request's edit (one untimed edit each, hooks attached)."""
    products = ProductCalls()
    handles = products.attach(model)
    try:
        for r in requests:
            products.new_edit()
            edit(model, tok, [r], hp)()
    finally:
        for handle in handles:
            handle.remove()
    return floor_seconds(products)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_during(fn, interval_s: float = 0.001) -> tuple[Any, int, int]:
    """(fn(), RSS before, peak RSS while it ran), sampling /proc/self/statm every `interval_s` seconds."""
    before = peak = _rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            done.wait(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = fn()
    finally:
        done.set()
        thread.join()
    return result, before, max(peak, _rss_bytes())


def _memory_child(job: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: load the model, warm up, measure one edit's peak RSS growth."""
    from benchmarks.models import (
        load_bench_model,
        load_method_hparams,
        load_requests,
        parse_random,
        random_shape_hparams,
    )

    torch.set_num_threads(job["threads"])
    bench = load_bench_model(job["spec"], models_dir=job["models_dir"], random_world=job["random_world"],
                             seed=job["seed"])  # fmt: skip
    (request,) = load_requests(job["world_root"], bench.world_profile, 1)
    hp, _ = load_method_hparams(job["method"], job["spec"], bench.model.config.num_hidden_layers,
                                job["hparams_dir"])  # fmt: skip
    if parse_random(job["spec"]) is not None:  # the parent computed these statistics into stats_dir
        hp = random_shape_hparams(hp, stats_dir=job["stats_dir"], cov_samples=job["cov_samples"])
    with torch.no_grad():
        bench.model(**bench.tok(request.prompt, return_tensors="pt"))
    edit = get_method(job["method"]).edit
    undo, before, peak = peak_rss_during(lambda: edit(bench.model, bench.tok, [request], hp))
    undo()
    return {
        "how": "RSS peak above pre-edit RSS, one edit in a fresh process, sampled every 1 ms",
        "rss_before_mb": before / MB, "rss_peak_mb": peak / MB, "peak_delta_mb": (peak - before) / MB,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
    }  # fmt: skip


def measure_edit_memory(
    spec: str,
    method: str,
    *,
    models_dir: str | Path,
    world_root: str | Path,
    hparams_dir: str | Path,
    random_world: str,
    threads: int,
    seed: int = 0,
    stats_dir: str | Path | None = None,
    cov_samples: int = 0,
) -> dict[str, Any]:
    """Peak RSS growth of one `method` edit on `spec`, in a fresh spawned process (module docstring)."""
    if not Path("/proc/self/statm").is_file():
        return {"how": "unavailable (no /proc/self/statm)"}
    job = {
        "spec": spec,
        "method": method,
        "models_dir": str(models_dir),
        "world_root": str(world_root),
        "hparams_dir": str(hparams_dir),
        "random_world": random_world,
        "threads": threads,
        "seed": seed,
        "stats_dir": None if stats_dir is None else str(stats_dir),
        "cov_samples": cov_samples,
    }
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        out = pool.submit(_memory_child, job).result()
    log.info("%s on %s: peak RSS +%.1f MB", method, spec, out["peak_delta_mb"])
    return out
