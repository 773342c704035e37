"""The one-pass output-layer step of `benchmarks.head_pass` equals log_softmax + autograd."""

from __future__ import annotations

import torch

from benchmarks.head_pass import autograd_pass, main, one_pass


def test_one_pass_matches_autograd_across_chunk_edges():
    gen = torch.Generator().manual_seed(1)
    w, h = torch.randn(1000, 16, generator=gen), torch.randn(3, 16, generator=gen)
    labels = torch.tensor([0, 999, 517])
    ref_loss, ref_grad = autograd_pass(h, w, labels)
    for chunk in (7, 256, 1000, 4096):
        loss, grad = one_pass(h, w, labels, chunk)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-6)


def test_cli_reports_both_ways():
    out = main(["--vocab", "300", "--hidden", "8", "--rows", "2", "--repeats", "4", "--threads", "1"])
    assert set(out) == {"autograd (2 reads)", "one pass (1 read)"} and all(v > 0 for v in out.values())
