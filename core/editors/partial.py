"""Partial forward passes for edit-optimisation loops: the frozen bottom once, the LM head only where scored.

An optimisation that changes nothing below block L (FT's trained projections in blocks >= L; ROME's and
MEMIT's delta on block L's MLP output) cannot change what enters block L, so `bottom_input` computes it
ONCE and `scored_logprobs` then runs only blocks >= L (`core.hooks.skip_below`). A loss that reads the
next-token distribution at a few positions needs the (V x d) output layer at those positions only, not
at every token: on a 50k vocabulary the head is most of a small model's cost. A `ScoredBatch` carries the
token rows, the scored positions and the (position, label, weight) pairs of a weighted NLL,
    L = -sum_i weight_i * log p(label_i | position_i),
which `weighted_nll` evaluates. Rows end at the last scored position: later tokens cannot influence it
(causal attention), so they are not fed at all.

A change confined to columns >= c (ROME's and MEMIT's delta, added at each row's lookup token) cannot
alter anything at columns < c either. `freeze_prefix` runs those columns once and keeps their keys and
values in every block; `scored_logprobs(..., prefix=...)` then feeds only columns >= c, attending to the
kept prefix (the KV cache of incremental decoding). With context templates the prefix is most of each
row. The result equals the full pass up to float rounding (attention over a split key set).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn
from transformers import DynamicCache

from core.hooks import capture_input, run_until, skip_below
from core.models.arch import get_arch
from core.models.inputs import position_ids_from_mask


def pad_rows(
    rows: Sequence[Sequence[int]], tok, device, side: str | None = None
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """(ids, mask, shift per row): `rows` padded on `side` (default `tok.padding_side`) with pad (else eos,
    else 0)."""
    side = side or tok.padding_side
    width = max(len(r) for r in rows)
    pad_id = next((i for i in (tok.pad_token_id, tok.eos_token_id) if i is not None), 0)
    ids = torch.full((len(rows), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    shifts = []
    for b, r in enumerate(rows):
        s = width - len(r) if side == "left" else 0
        ids[b, s : s + len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[b, s : s + len(r)] = 1
        shifts.append(s)
    return ids.to(device), mask.to(device), shifts


@dataclass(frozen=True)
class ScoredBatch:
    """Token rows and the positions, labels and weights of a weighted next-token NLL over them."""

    ids: torch.Tensor  # (B, T)
    mask: torch.Tensor  # (B, T)
    rows: torch.Tensor  # (S,) row of each scored position
    cols: torch.Tensor  # (S,) column (after padding) of each scored position
    pair_pos: torch.Tensor  # (P,) index into the S scored positions
    labels: torch.Tensor  # (P,) token id scored at that position
    weights: torch.Tensor  # (P,) float weight of each pair

    @property
    def position_ids(self) -> torch.Tensor:
        return position_ids_from_mask(self.mask)


def scored_batch(
    tok, rows: Sequence[Sequence[int]], scored: Sequence[Sequence[tuple[int, int, float]]], device
) -> ScoredBatch:
    """Build a `ScoredBatch`; `scored[b]` lists (position in row b, label, weight) triples.

    Each row is cut after its last scored position; positions are deduplicated per row.
    """
    if len(rows) != len(scored) or not rows:
        raise ValueError(f"need as many score lists as rows (>0), got {len(scored)} and {len(rows)}")
    cut = []
    for b, (row, triples) in enumerate(zip(rows, scored, strict=True)):
        if not triples:
            raise ValueError(f"row {b} has no scored position")
        last = max(p for p, _, _ in triples)
        if not 0 <= min(p for p, _, _ in triples) or last >= len(row):
            raise ValueError(
                f"row {b}: scored positions {sorted({p for p, _, _ in triples})} outside 0..{len(row) - 1}"
            )
        cut.append(list(row[: last + 1]))
    ids, mask, shifts = pad_rows(cut, tok, device)
    index: dict[tuple[int, int], int] = {}
    pair_pos, labels, weights = [], [], []
    for b, triples in enumerate(scored):
        for p, label, w in triples:
            key = (b, shifts[b] + p)
            pair_pos.append(index.setdefault(key, len(index)))
            labels.append(label)
            weights.append(w)
    pos_rows, pos_cols = zip(*index, strict=True)

    def t(values, dtype=torch.long):
        return torch.tensor(values, dtype=dtype, device=device)

    return ScoredBatch(ids, mask, t(pos_rows), t(pos_cols), t(pair_pos), t(labels), t(weights, torch.float32))


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The ModuleList of decoder blocks (the arch spec's `layer` template without its index)."""
    return model.get_submodule(get_arch(model).layer.removesuffix(".{}"))


def first_block_of(model: nn.Module, module_names: Sequence[str]) -> int:
    """The lowest block holding one of `module_names`; 0 when any name lies outside the blocks."""
    arch, n = get_arch(model), len(decoder_blocks(model))
    found = []
    for name in module_names:
        layer = next((i for i in range(n) if name.startswith(arch.layer.format(i) + ".")), None)
        if layer is None:
            return 0
        found.append(layer)
    return min(found, default=0)


def bottom_input(model: nn.Module, batch: ScoredBatch, layer: int) -> torch.Tensor | None:
    """What block `layer` receives for `batch` (computed without grad; the pass stops there); None for 0."""
    if layer == 0:
        return None
    with torch.no_grad(), capture_input(decoder_blocks(model)[layer], stop=True) as box:
        run_until(
            lambda: model.base_model(
                input_ids=batch.ids, attention_mask=batch.mask, position_ids=batch.position_ids
            )
        )
    return box.value


@dataclass(frozen=True)
class FrozenPrefix:
    """Keys and values of columns [0, start) of a batch in every block, computed once (no grad)."""

    start: int
    cache: DynamicCache
    saved: tuple[tuple[torch.Tensor, torch.Tensor] | None, ...]  # per cache layer

    def rewind(self) -> DynamicCache:
        """The cache holding the prefix only (a pass appends the columns it feeds; this drops them)."""
        for layer, kv in zip(self.cache.layers, self.saved, strict=True):
            if kv is not None:
                layer.keys, layer.values = kv
        return self.cache


@lru_cache(maxsize=8)
def _cache_keyword(cls: type) -> str:
    """The name the base model's forward gives its KV cache argument (`cache` from transformers 5.x)."""
    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


def freeze_prefix(model: nn.Module, batch: ScoredBatch, start: int) -> FrozenPrefix:
    """Run columns [0, `start`) of `batch` once (no grad) and keep their keys/values in every block."""
    if not 0 < start <= int(batch.cols.min()):
        raise ValueError(
            f"prefix end {start} must be in 1..{int(batch.cols.min())} (the first scored column)"
        )
    base = model.base_model
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        base(input_ids=batch.ids[:, :start], attention_mask=batch.mask[:, :start],
             position_ids=batch.position_ids[:, :start], use_cache=True, **{_cache_keyword(type(base)): cache})  # fmt: skip
    saved = tuple(
        (la.keys, la.values) if getattr(la, "keys", None) is not None else None for la in cache.layers
    )
    return FrozenPrefix(start, cache, saved)


def scored_logprobs(
    model: nn.Module,
    batch: ScoredBatch,
    layer: int = 0,
    hidden_in: torch.Tensor | None = None,
    prefix: FrozenPrefix | None = None,
) -> torch.Tensor:
    """(S, V) float32 log-softmax at the scored positions.

    With `hidden_in` (block `layer`'s input for every column of `batch`, from `bottom_input` or an
    unmodified pass, before any change) only blocks >= `layer` run. With `prefix` (`freeze_prefix` of the
    same batch) only columns >= `prefix.start` are fed; hooks that add to them must index columns from
    `prefix.start`.
    """
    base, head = model.base_model, model.get_output_embeddings()
    start = prefix.start if prefix is not None else 0
    extra = {} if prefix is None else {"use_cache": True, _cache_keyword(type(base)): prefix.rewind()}

    def hidden() -> torch.Tensor:
        return base(input_ids=batch.ids[:, start:], attention_mask=batch.mask,
                    position_ids=batch.position_ids[:, start:], **extra).last_hidden_state  # fmt: skip

    if hidden_in is None:
        h = hidden()
    else:
        with skip_below(decoder_blocks(model), layer, hidden_in[:, start:]):
            h = hidden()
    return torch.log_softmax(head(h[batch.rows, batch.cols - start]).float(), dim=-1)


def weighted_nll(logp: torch.Tensor, batch: ScoredBatch) -> torch.Tensor:
    """-sum_i weight_i * logp[pair_pos_i, label_i] (a scalar)."""
    return -(logp[batch.pair_pos, batch.labels] * batch.weights).sum()
