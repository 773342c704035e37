"""The output layer's floor of an edit: its matrix products at the rows the edit scores, replayed alone.

An edit's loss (FT's NLL, ROME's and MEMIT's v* objective) reads the next-token distribution at S scored
positions per optimisation step. Computed exactly, that needs the (V x d) output layer at each of those
rows, forward (all V logits, for the softmax's normaliser) and, when the step takes a gradient, backward
to the hidden states (the weights are frozen or not the head's). On random weights no step reaches an
early-stop loss, so the step count is the hparams'. `HeadCalls` records, during real edits, the row count
of every forward call of the output layer and of every backward through it (a tensor hook on the
output); `head_floor_seconds` replays exactly those products on random inputs with the same weight and
the same torch thread count. The sum is a lower bound for any fp32 implementation of the same objective
with the same step count and context templates on this CPU and torch build: it leaves out the blocks,
the softmax and everything else.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class HeadCalls:
    """Row counts of the output layer's forward calls and of the backward passes through it, per edit."""

    forward: list[Counter] = field(default_factory=list)
    backward: list[Counter] = field(default_factory=list)

    def new_edit(self) -> None:
        self.forward.append(Counter())
        self.backward.append(Counter())

    def hook(self, _module: nn.Module, _args, out: torch.Tensor) -> None:
        """Forward hook for the output layer (call `new_edit` before each edit)."""
        rows = out.numel() // out.shape[-1]
        self.forward[-1][rows] += 1
        if out.requires_grad:
            backward = self.backward[-1]
            out.register_hook(lambda _g: backward.update([rows]))


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def head_product_ms(head: nn.Module, rows: int, *, backward: bool, repeats: int = 5) -> float:
    """Median milliseconds of one output-layer product at `rows` rows: x W^T (+ b), or g W when `backward`."""
    weight, bias = head.weight.detach(), getattr(head, "bias", None)
    bias = bias.detach() if bias is not None else None
    v, d = weight.shape
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(rows, v if backward else d, generator=gen).to(weight)
    with torch.no_grad():
        if backward:
            return _median_ms(lambda: x @ weight, repeats)
        return _median_ms(lambda: F.linear(x, weight, bias), repeats)


def head_floor_seconds(head: nn.Module, calls: HeadCalls, repeats: int = 5) -> list[float]:
    """Per recorded edit: seconds its output-layer products take when replayed alone (module docstring)."""
    cost: dict[tuple[int, bool], float] = {}

    def ms(rows: int, backward: bool) -> float:
        if (rows, backward) not in cost:
            cost[rows, backward] = head_product_ms(head, rows, backward=backward, repeats=repeats)
        return cost[rows, backward]

    return [
        (sum(n * ms(r, False) for r, n in fwd.items()) + sum(n * ms(r, True) for r, n in bwd.items())) / 1e3
        for fwd, bwd in zip(calls.forward, calls.backward, strict=True)
    ]
