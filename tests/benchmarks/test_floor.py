"""The product recorder counts exactly the linear layers' products of a training loop; replays sum up."""

from __future__ import annotations

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from benchmarks.floor import Product, ProductCalls, floor_seconds


def test_records_forward_input_and_weight_products():
    torch.manual_seed(0)
    trained, head = Conv1D(16, 8), nn.Linear(16, 50, bias=False)  # Conv1D(nf=d_out, nx=d_in)
    head.weight.requires_grad_(False)
    model = nn.Sequential(trained, head)
    calls = ProductCalls()
    handles = calls.attach(model)
    x = torch.randn(3, 2, 8)
    try:
        calls.new_edit()
        for step in range(4):
            loss = model(x).logsumexp(-1).sum()  # 6 rows
            if step < 3:  # the last step reads the loss only, as the edit loops' final step does
                loss.backward()
        with torch.no_grad():
            model(x[0])  # 2 rows, no gradient
        calls.new_edit()
    finally:
        for h in handles:
            h.remove()
    model(x[0, :1]).sum().backward()  # hooks removed: not counted
    assert len(calls.edits) == 2 and calls.edits[1] == {}
    assert calls.edits[0] == {
        Product(6, 8, 16, "forward"): 4, Product(6, 16, 50, "forward"): 4,
        Product(2, 8, 16, "forward"): 1, Product(2, 16, 50, "forward"): 1,
        Product(6, 8, 16, "weight_grad"): 3,  # the input x needs no gradient
        Product(6, 16, 50, "input_grad"): 3,  # the head's weight is frozen
    }  # fmt: skip
    floors = floor_seconds(calls, repeats=1)
    assert floors[0] > 0 and floors[1] == 0
