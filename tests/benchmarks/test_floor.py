"""The head-floor recorder counts exactly the output layer's products of a training loop; replay costs sum."""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.floor import HeadCalls, head_floor_seconds


def test_records_forward_rows_and_backward_passes():
    torch.manual_seed(0)
    head = nn.Linear(8, 50, bias=False)
    head.weight.requires_grad_(False)
    calls = HeadCalls()
    handle = head.register_forward_hook(calls.hook)
    h = torch.randn(3, 4, 8, requires_grad=True)
    try:
        calls.new_edit()
        for step in range(4):
            loss = head(h[:, :2]).logsumexp(-1).sum()  # 6 rows
            if step < 3:  # the last step reads the loss only, as the edit loops' final step
                loss.backward()
        with torch.no_grad():
            head(h[0])  # 4 rows, no gradient
        calls.new_edit()
        head(h[0, :1]).sum().backward()
    finally:
        handle.remove()
    assert calls.forward == [{6: 4, 4: 1}, {1: 1}]
    assert calls.backward == [{6: 3}, {1: 1}]
    floors = head_floor_seconds(head, calls, repeats=1)
    assert len(floors) == 2 and all(f > 0 for f in floors)
