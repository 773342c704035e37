"""SERAC's explicit edit memory: edit descriptors, their scope-classifier keys, and nearest-edit lookup.

Mitchell et al. 2022 ("Memory-Based Model Editing at Scale", §3) store every edit descriptor z_e in a
memory and, for an input x, take the edit with the highest in-scope probability g(z_e, x); the input is
routed to the counterfactual model when that probability exceeds a threshold (0.5 in the paper and in
EasyEdit `SERAC.forward`). With the embedding classifier (the paper's dense variant; EasyEdit
`embedding_logsim_matrix` with `cos: false`, `square: true`) the probability is

    g(z_e, x) = exp(-||k_e - q_x||^2),    k_e = f(z_e),  q_x = f(x),

where f is the trained encoder head, so log g is minus the squared Euclidean distance (p = 1 at
distance 0). `EditMemory` holds the descriptors and the keys k_e; `lookup` returns, per query, the best
probability and the index of its edit. Ties (equal probabilities) go to the NEWEST edit, so a later
edit of the same fact supersedes an earlier one in sequential editing. The memory is a stack: entries
are pushed per edit call and popped in reverse order (LIFO), which is what `Undo` needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EditDescriptor:
    """One stored edit: the request it came from, its text, and the token ids that condition the cf model."""

    case_id: str
    prompt: str
    target: str
    text: str  # the edit descriptor z_e as text, e.g. "{prompt} {target}"
    context_ids: tuple[int, ...]  # z_e tokens + separator, prepended to a routed input


class EditMemoryError(RuntimeError):
    """The memory was popped out of order or with entries it does not hold."""


def scope_probabilities(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """g = exp(-||k - q||^2) for every (query, key) pair.  # (B, d), (N, d) -> (B, N)"""
    d2 = (queries[:, None, :].float() - keys[None, :, :].float()).pow(2).sum(-1)  # (B, N)
    return torch.exp(-d2)


class EditMemory:
    """A stack of `EditDescriptor`s and their (N, d) key embeddings."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._descriptors: list[EditDescriptor] = []
        self._keys = torch.zeros(0, dim)

    def __len__(self) -> int:
        return len(self._descriptors)

    @property
    def descriptors(self) -> tuple[EditDescriptor, ...]:
        return tuple(self._descriptors)

    @property
    def keys(self) -> torch.Tensor:
        """(N, d) float32 keys, row i belonging to descriptor i."""
        return self._keys

    def push(self, descriptors: Sequence[EditDescriptor], keys: torch.Tensor) -> tuple[EditDescriptor, ...]:
        """Append descriptors and their keys (len(descriptors), d); returns the pushed entries."""
        if keys.shape != (len(descriptors), self.dim):
            raise ValueError(
                f"expected keys of shape {(len(descriptors), self.dim)}, got {tuple(keys.shape)}"
            )
        if not descriptors:
            raise ValueError("nothing to push")
        self._descriptors.extend(descriptors)
        self._keys = torch.cat([self._keys, keys.detach().float().cpu()], 0)
        return tuple(descriptors)

    def pop(self, entries: Sequence[EditDescriptor]) -> None:
        """Remove `entries`, which must be the last pushed ones (undo last edit first)."""
        n = len(entries)
        if n == 0 or n > len(self) or tuple(self._descriptors[-n:]) != tuple(entries):
            raise EditMemoryError("edit memory entries must be removed last-pushed first")
        del self._descriptors[-n:]
        self._keys = self._keys[: len(self._descriptors)].clone()

    def lookup(self, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(best probability (B,), index of its edit (B,)) for (B, d) queries; ties go to the newest edit."""
        if not len(self):
            raise EditMemoryError("the edit memory is empty")
        probs = scope_probabilities(queries.cpu(), self._keys)  # (B, N)
        best_rev = probs.flip(-1).argmax(-1)  # argmax returns the first maximum: first from the end
        idx = len(self) - 1 - best_rev
        return probs.gather(-1, idx[:, None]).squeeze(-1), idx
