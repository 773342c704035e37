"""Small Trace-style context managers for reading and editing module inputs and outputs (our own nethook).

ROME's `nethook.Trace(..., stop=True)` reads a module's input and stops the forward pass there, so the
layers above never run; `capture_input` does the same with a private exception raised from a forward
pre-hook and swallowed by `run_until`. `add_at_positions` adds a vector to a module's output at given
(row, position) pairs (ROME's `edit_output_fn`), and `skip_below` replaces the blocks below a layer by
the identity while feeding cached hidden states into that layer, so an optimisation loop only runs the
layers it can change (ROME §3 / MEMIT compute_z, made faster). Every hook is removed on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn


class _StopForward(Exception):
    """Raised by a capture hook to end a forward pass early (caught by `run_until`)."""


class Captured:
    """Holds the tensor a capture hook saw (None until the hook fires)."""

    def __init__(self) -> None:
        self.value: torch.Tensor | None = None


@contextlib.contextmanager
def capture_inputs(modules: dict[str, nn.Module], *, stop: bool = False) -> Iterator[dict[str, Captured]]:
    """`capture_input` on several modules at once; with `stop`, end the pass once every one has been called.

    Reset the boxes (`box.value = None`) before each forward pass when reusing them.
    """
    boxes = {name: Captured() for name in modules}
    handles = []

    def make_hook(box: Captured):
        def hook(_mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            x = args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values())))
            box.value = x.detach() if stop else x
            if stop and all(b.value is not None for b in boxes.values()):
                raise _StopForward

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_pre_hook(make_hook(boxes[name]), with_kwargs=True))
        yield boxes
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def capture_input(module: nn.Module, *, stop: bool = False) -> Iterator[Captured]:
    """Record the first positional input of `module` on each call; with `stop`, end the forward pass there."""
    with capture_inputs({"": module}, stop=stop) as boxes:
        yield boxes[""]


def run_until(fn: Callable[[], Any]) -> None:
    """Call `fn` (a forward pass), ignoring the early stop raised by a `capture_input(stop=True)` hook."""
    try:
        fn()
    except _StopForward:
        pass


@contextlib.contextmanager
def add_at_positions(
    module: nn.Module, delta: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
) -> Iterator[None]:
    """Within the block, `module`'s output gets `delta` (d,) added at [rows[i], cols[i]] (out-of-place)."""

    def hook(_mod: nn.Module, _args: Any, out: torch.Tensor) -> torch.Tensor:
        add = torch.zeros_like(out)
        add[rows, cols] = delta.to(out.dtype)
        return out + add

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _passthrough(hidden_states: torch.Tensor, *_args: Any, **_kwargs: Any) -> torch.Tensor:
    return hidden_states


@contextlib.contextmanager
def skip_below(blocks: nn.ModuleList, layer: int, hidden_in: torch.Tensor) -> Iterator[None]:
    """Blocks `< layer` return their input unchanged and block `layer` receives `hidden_in` instead.

    `hidden_in` (B, T, d) must be what block `layer` received from an unmodified forward of the same batch,
    so the model's output is unchanged while the bottom of the network costs nothing. Blocks must return
    their hidden states as a tensor (transformers >= 5 decoder layers do).
    """

    def feed(_mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]):
        if args:
            return (hidden_in, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": hidden_in}

    handle = blocks[layer].register_forward_pre_hook(feed, with_kwargs=True)
    for b in blocks[:layer]:
        b.forward = _passthrough  # instance attribute shadows the class method until deleted below
    try:
        yield
    finally:
        handle.remove()
        for b in blocks[:layer]:
            del b.forward


@contextlib.contextmanager
def capture_output(module: nn.Module, *, stop: bool = False) -> Iterator[Captured]:
    """Record `module`'s output tensor (first element of a tuple) on each call; with `stop`, end the pass there."""
    box = Captured()

    def hook(_mod: nn.Module, _args: Any, out: Any) -> None:
        x = out[0] if isinstance(out, tuple) else out
        box.value = x.detach() if stop else x
        if stop:
            raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        yield box
    finally:
        handle.remove()
