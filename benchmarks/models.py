"""The models the benchmarks time: world LMs by name, and random-weight GPT-2 shapes `random-<L>x<D>`.

A world-LM spec (`world-gpt2`, `world-llama-smoke`, ...) loads through `core.models.world_lms`; its edit
requests come from the world it was trained on. `random-<L>x<D>` is a GPT-2 with L layers, width D,
D // 64 heads (at least 1), 1024 positions and the full GPT-2 vocabulary (50257), with seeded random
weights: `random-4x128` has 7.4M parameters and `random-12x768` is the GPT-2-small shape (124M). Its
tokenizer is a byte-level BPE (vocab 2048) trained in code on the world's pretraining corpus, as the
world LMs' own tokenizers are; its ids fit the model's vocabulary, and the unused rows of the 50257-row
embedding cost the same time as used ones, so the mismatch is irrelevant for timing.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from core.config import load_hparams
from core.data import read_requests
from core.data.trees import dataset_file
from core.editors.registry import get_method
from core.models.arch import get_arch
from core.models.tokenizer import train_tokenizer
from core.models.world_lms import parse_world_lm, resolve_model
from core.types import EditRequest
from core.world.corpus import pretraining_corpus
from core.world.generate import build_world
from core.world.store import ensure_world

GPT2_VOCAB = 50257
RANDOM_TOKENIZER_VOCAB = 2048  # the world LMs' vocabulary size (core.models.pretrain_config)
_RANDOM = re.compile(r"^random-(?P<layers>\d+)x(?P<width>\d+)$")
HPARAMS_FALLBACKS = ("world-gpt2", "world-gpt2-smoke")  # hparams files tried for random shapes, in order


@dataclass(frozen=True)
class BenchModel:
    """A model to time, its tokenizer, and where its edit requests and hparams come from."""

    spec: str
    model: nn.Module
    tok: Any
    world_profile: str

    @property
    def n_params(self) -> int:
        """Number of parameters (tied embeddings counted once)."""
        return sum(p.numel() for p in self.model.parameters())


def parse_random(spec: str) -> tuple[int, int] | None:
    """(layers, width) of a `random-<L>x<D>` spec, None for any other spec."""
    m = _RANDOM.match(spec)
    return (int(m["layers"]), int(m["width"])) if m else None


def random_gpt2(layers: int, width: int, tok, *, vocab_size: int = GPT2_VOCAB, seed: int = 0) -> nn.Module:
    """A GPT-2 of the given shape with seeded random weights, dropout off, in eval mode."""
    if len(tok) > vocab_size:
        raise ValueError(f"tokenizer has {len(tok)} ids but the model only {vocab_size}")
    cfg = GPT2Config(
        vocab_size=vocab_size, n_positions=1024, n_layer=layers, n_embd=width, n_head=max(1, width // 64),
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    return GPT2LMHeadModel(cfg).eval()


def corpus_tokenizer(world_profile: str, world_seed: int = 0):
    """Byte-level BPE trained on the world's pretraining corpus, with GPT-2's tokenizer policy."""
    tok = train_tokenizer(pretraining_corpus(build_world(world_profile, world_seed)), RANDOM_TOKENIZER_VOCAB)
    tok.padding_side = get_arch("gpt2").tokenizer.padding_side
    return tok


def load_bench_model(spec: str, *, models_dir: str | Path, random_world: str, seed: int = 0) -> BenchModel:
    """A world LM (requests from its own world) or a `random-<L>x<D>` GPT-2 (requests from `random_world`)."""
    shape = parse_random(spec)
    if shape is not None:
        tok = corpus_tokenizer(random_world)
        model = random_gpt2(*shape, tok, seed=seed)
        # a name keys the covariance cache (core.stats.model_identity adds a hash of the weights)
        model.config._name_or_path = f"bench-{spec}-seed{seed}"
        return BenchModel(spec, model, tok, random_world)
    parsed = parse_world_lm(spec)
    if parsed is None:
        raise ValueError(f"model spec {spec!r} is neither world-<arch>[-smoke] nor random-<L>x<D>")
    model, tok = resolve_model(spec, models_dir=models_dir)
    return BenchModel(spec, model, tok, parsed[1])


def load_requests(world_root: str | Path, profile: str, n: int, dataset: str = "zsre") -> list[EditRequest]:
    """The first `n` records of `dataset` in the world `profile` (built on demand under `world_root`)."""
    layout, path = dataset_file(ensure_world(world_root, profile, 0), dataset)
    requests = read_requests(layout, path)
    if len(requests) < n:
        raise ValueError(f"{path} has {len(requests)} records, fewer than the {n} needed")
    return requests[:n]


def load_method_hparams(method: str, spec: str, n_layers: int, hparams_dir: str | Path) -> tuple[Any, Path]:
    """The method's hparams for `spec`: `<dir>/<method>/<spec>.yaml`, else the first fallback that fits.

    Fallbacks (`HPARAMS_FALLBACKS`) are the world-gpt2 files whose `layers` (when the hparams have any)
    all exist in an `n_layers`-layer model, so random shapes edit the same module as world-gpt2.
    Relative paths (string fields starting with "./" or "../": a covariance `stats_dir`, IKE's
    `demo_pool`) are written relative to the paper folder, where DVC runs its notebooks
    (`<hparams_dir>/..`), and are resolved against it.
    """
    cls = get_method(method).hparams
    for name in (spec, *HPARAMS_FALLBACKS):
        path = Path(hparams_dir) / method / f"{name}.yaml"
        if path.is_file():
            hp = load_hparams(path, cls)
            if name == spec or all(layer < n_layers for layer in getattr(hp, "layers", ())):
                return _resolve_paths(hp, Path(hparams_dir).resolve().parent), path
    raise FileNotFoundError(f"no hparams for {method} on {spec} under {hparams_dir}/{method}/")


def random_shape_hparams(hp: Any, *, stats_dir: str | Path, cov_samples: int) -> Any:
    """`hp` for a random shape: covariance statistics cached in `stats_dir` over `cov_samples` texts.

    Timing does not depend on the statistic's value, and the paper-run count (20,000 texts) would cost
    minutes per layer on the 124M shape; methods without covariance settings are returned unchanged.
    """
    if not hasattr(hp, "mom2_n_samples"):
        return hp
    return dataclasses.replace(hp, stats_dir=str(stats_dir), mom2_n_samples=cov_samples)


def _resolve_paths(hp: Any, base: Path) -> Any:
    """`hp` with its string fields that start with "./" or "../" made absolute against `base`."""
    fields = {
        f.name: str((base / value).resolve())
        for f in dataclasses.fields(hp)
        if isinstance(value := getattr(hp, f.name), str) and value.startswith(("./", "../"))
    }
    return dataclasses.replace(hp, **fields) if fields else hp
