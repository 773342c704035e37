"""Is the output layer's cost in a v*/FT step its two weight reads? One step's head work, two ways.

A step of FT's, ROME's or MEMIT's optimisation needs, at S scored rows, the log-softmax over the
vocabulary and the gradient of the loss with respect to the hidden states. `core.editors.partial` does
it as `log_softmax(h @ W.T)` plus autograd, which reads the (V x d) weights W twice: in the forward and in
the backward pass. `one_pass` gets the same loss and gradient from ONE read of W: an online softmax over
vocabulary chunks that accumulates E_p[W] (the gradient of logsumexp) while each chunk is in cache.
If the second read were the bottleneck, `one_pass` would be up to 2x faster.

    python -m benchmarks.head_pass --vocab 50257 --hidden 128 --rows 5 --threads 2

prints the median and minimum milliseconds of both over `--repeats` alternating runs and checks that
they agree (loss and gradient). Timing only; nothing here is used by the editors.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import torch


def autograd_pass(h: torch.Tensor, w: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(NLL summed over rows, d NLL / d h) via log_softmax and autograd, as `core.editors.partial`."""
    h = h.detach().clone().requires_grad_()
    logp = torch.log_softmax(h @ w.T, dim=-1)
    loss = -logp[torch.arange(len(labels)), labels].sum()
    loss.backward()
    return loss.detach(), h.grad


def one_pass(
    h: torch.Tensor, w: torch.Tensor, labels: torch.Tensor, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same loss and gradient from one read of `w`: d/dh [lse(h W^T) - h.w_y] = E_p[W] - w_y."""
    n, d = h.shape
    top = torch.full((n,), -float("inf"))
    total, acc = torch.zeros(n), torch.zeros(n, d)
    for c in range(0, w.shape[0], chunk):
        wc = w[c : c + chunk]
        z = h @ wc.T
        new_top = torch.maximum(top, z.max(dim=1).values)
        scale = torch.exp(top - new_top)
        e = torch.exp(z - new_top[:, None])
        total = total * scale + e.sum(dim=1)
        acc = acc * scale[:, None] + e @ wc
        top = new_top
    w_y = w[labels]
    loss = (top + total.log() - (h * w_y).sum(dim=1)).sum()
    return loss, acc / total[:, None] - w_y


def _time(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """CLI entry point (see the module docstring); returns the medians in ms."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--rows", type=int, default=5, help="scored positions per step")
    p.add_argument("--chunk", type=int, default=4096)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=40)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(a.vocab, a.hidden, generator=gen) * 0.02
    h = torch.randn(a.rows, a.hidden, generator=gen)
    labels = torch.randint(0, a.vocab, (a.rows,), generator=gen)
    (l1, g1), (l2, g2) = autograd_pass(h, w, labels), one_pass(h, w, labels, a.chunk)
    torch.testing.assert_close(l2, l1, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(g2, g1, rtol=1e-4, atol=1e-6)
    runs: dict[str, list[float]] = {"autograd (2 reads)": [], "one pass (1 read)": []}
    for _ in range(2):  # alternate, so drift on a shared machine hits both
        runs["autograd (2 reads)"] += _time(lambda: autograd_pass(h, w, labels), a.repeats // 2)
        runs["one pass (1 read)"] += _time(lambda: one_pass(h, w, labels, a.chunk), a.repeats // 2)
    mb = a.vocab * a.hidden * 4 / 2**20
    print(f"V={a.vocab} d={a.hidden} rows={a.rows} threads={a.threads} (W = {mb:.1f} MiB); loss and gradient agree")
    medians = {}
    for name, ts in runs.items():
        medians[name] = 1e3 * statistics.median(ts)
        print(f"{name:20s} median {medians[name]:6.2f} ms  min {1e3 * min(ts):6.2f} ms")
    return medians


if __name__ == "__main__":
    main()
