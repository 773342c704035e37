"""The matrix-product floor of an edit: its weight products at the shapes the edit used, replayed alone.

An edit's optimisation (FT's NLL, ROME's and MEMIT's v* objective) must, at every step, run the blocks
it can change over the columns it can change and the output layer at the scored positions (all V
logits, for the softmax's normaliser), forward and then backward. On random weights no step reaches an
early-stop loss, so the step count is the hparams'. `ProductCalls` records, during real edits, every
product of a linear layer (`nn.Linear` and transformers' `Conv1D`, the output layer included): the
forward x W^T at each call's rows, and for each backward pass through its output the input gradient
g W (when the input needs one) and the weight gradient g^T x (when the weight is trained).
`floor_seconds` replays exactly those products on random tensors of the same shapes with the same
thread count. The sum leaves out attention's own products, norms, softmax and Python, so it is a lower
bound for any fp32 implementation of the same objective, step count and context templates on this CPU
and torch build, at our batch shapes (left padding included).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

from benchmarks.throughput import median_seconds

Kind = Literal["forward", "input_grad", "weight_grad"]


@dataclass(frozen=True, order=True)
class Product:
    """One linear layer's matrix product: `rows` x `d_in` inputs against a (d_out, d_in) weight."""

    rows: int
    d_in: int
    d_out: int
    kind: Kind


@dataclass
class ProductCalls:
    """The products of the linear layers, counted per edit (call `new_edit` before each edit)."""

    edits: list[Counter[Product]] = field(default_factory=list)

    def new_edit(self) -> None:
        self.edits.append(Counter())

    def attach(self, model: nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
        """Forward hooks on every linear layer of `model`; remove the returned handles when done."""
        return [m.register_forward_hook(self._hook) for m in model.modules() if isinstance(m, nn.Linear | Conv1D)]

    def _hook(self, module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        x = args[0]
        rows, d_in, d_out = x.numel() // x.shape[-1], x.shape[-1], out.shape[-1]
        counter = self.edits[-1]
        counter[Product(rows, d_in, d_out, "forward")] += 1
        if out.requires_grad:
            kinds = [k for k, needed in (("input_grad", x.requires_grad),
                                         ("weight_grad", module.weight.requires_grad)) if needed]  # fmt: skip

            def on_grad(_grad: torch.Tensor) -> None:
                counter.update(Product(rows, d_in, d_out, k) for k in kinds)

            out.register_hook(on_grad)


def product_ms(p: Product, repeats: int = 5) -> float:
    """Median wall milliseconds of one product of shape `p` on random fp32 tensors (after one warm-up)."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(p.d_out, p.d_in, generator=gen)
    x = torch.randn(p.rows, p.d_in, generator=gen)
    g = torch.randn(p.rows, p.d_out, generator=gen)
    fn = {
        "forward": lambda: F.linear(x, w),
        "input_grad": lambda: g @ w,
        "weight_grad": lambda: g.T @ x,
    }[p.kind]
    with torch.no_grad():
        return median_seconds({"product": fn}, repeats)["product"] * 1e3


def floor_seconds(calls: ProductCalls, repeats: int = 5) -> list[float]:
    """Per recorded edit: seconds its linear-layer products take when replayed alone (module docstring)."""
    cost: dict[Product, float] = {}
    out = []
    for counter in calls.edits:
        for p in counter:
            if p not in cost:
                cost[p] = product_ms(p, repeats)
        out.append(sum(n * cost[p] for p, n in counter.items()) / 1e3)
    return out
