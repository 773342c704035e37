"""Fixtures for the editor tests: tiny random GPT-2 / LLaMA models built in code and edit requests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.models.tiny import build_tiny_model
from core.types import EditRequest, Probe

HPARAMS_DIR = Path(__file__).parent / "hparams"
ARCHS = ("gpt2", "llama")

# (prompt, single-token target) pairs over the tiny vocabulary (core.models.tiny.TINY_TEXTS)
FACTS = (
    ("Alice Brown was born in", "Riga"),
    ("Boris Kell works as a", "Porto"),
    ("The city where Clara Voss lives is", "Oslo"),
    ("Dmitri Lund was born in", "Lyon"),
    ("Erin Page works as a", "Turin"),
    ("Farid Noor was born in", "Quito"),
    ("The city where Greta Holm lives is", "Varna"),
    ("Hugo Marsh was born in", "Utrecht"),
    ("Clara Voss works as a", "Riga"),
    ("The city where Erin Page lives is", "Porto"),
)


def make_request(i: int) -> EditRequest:
    """Request i (0 <= i < 10): single-token target, one rephrase, one portability and one locality probe."""
    prompt, target = FACTS[i]
    return EditRequest(
        case_id=f"case{i}",
        prompt=prompt,
        subject=prompt.split(" was")[0].split(" works")[0],
        target_new=target,
        rephrases=(f"In short, {prompt[0].lower()}{prompt[1:]}",),
        portability={"Subject_Aliasing": (Probe(f"As everyone knows, {prompt}", target),)},
        locality={"Relation_Specificity": (Probe("Greta Holm works as a", "painter"),)},
    )


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; with two, a busy second core stalls every op (OpenMP barrier)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=ARCHS)
def arch(request) -> str:
    return request.param


@pytest.fixture
def tiny(arch):
    """A fresh (model, tokenizer) pair of the tiny random `arch` model (seed 0, eval mode)."""
    return build_tiny_model(arch, seed=0)


def hparams_path(method: str, arch: str) -> Path:
    return HPARAMS_DIR / method / f"tiny-{arch}.yaml"


def clone_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of every parameter and buffer."""
    return {n: t.detach().clone() for n, t in [*model.named_parameters(), *model.named_buffers()]}


def assert_state_equal(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Every parameter and buffer is bit-identical (torch.equal) to `state`."""
    current = dict([*model.named_parameters(), *model.named_buffers()])
    assert current.keys() == state.keys()
    changed = [n for n, t in current.items() if not torch.equal(t, state[n])]
    assert not changed, f"not restored: {changed}"
