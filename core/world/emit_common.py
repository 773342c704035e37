"""Helpers shared by the dataset emitters: per-dataset seeded shuffles, splits, locality passages, writing.

Each dataset draws its cases from its own `random.Random(f"{seed}/{dataset}")` (string seeds are hashed
with SHA-512 by `random`, so they are stable across processes), so adding a dataset never changes
another one. Files are written with `core.io.write_json` (sorted keys, fixed indent, atomic rename).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from core.io import write_json
from core.world.schema import Fact, World

T = TypeVar("T")
LOCALITY_CHARS = 150  # WISE hallucination/temporal: 150-character passage prefix, 150-character continuation


def shuffled(world: World, dataset: str, items: Sequence[T]) -> list[T]:
    """`items` in a seeded order private to `dataset`."""
    out = list(items)
    random.Random(f"{world.seed}/{dataset}").shuffle(out)
    return out


def take_splits(items: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    """Consecutive disjoint slices of the requested sizes (shorter when `items` runs out)."""
    out, start = [], 0
    for n in sizes:
        out.append(list(items[start:start + n]))
        start += n
    return out


def counterfactual_facts(world: World) -> list[Fact]:
    """Known facts (edit candidates with a counterfactual target), in world order."""
    return list(world.known_facts)


def locality_passage(world: World, i: int) -> tuple[str, str]:
    """The i-th (prompt, continuation) pair cut from filler passages, 150 + 150 characters."""
    n = len(world.filler)
    text = world.filler[i % n]
    start = (i // n) * 7 % max(1, len(text) - 2 * LOCALITY_CHARS)
    return text[start:start + LOCALITY_CHARS], text[start + LOCALITY_CHARS:start + 2 * LOCALITY_CHARS]


def write(out_dir: Path, rel_path: str, obj: Any, counts: dict[str, int]) -> None:
    """Write one dataset file and record its size (records, or items per top-level key) in `counts`."""
    write_json(out_dir / rel_path, obj)
    if isinstance(obj, list):
        counts[rel_path] = len(obj)
    else:
        for k, v in obj.items():
            counts[f"{rel_path}:{k}"] = len(v)
