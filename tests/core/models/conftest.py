"""Fixtures of the model tests: torch on 2 threads, tiny checkpoints saved once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.models.tiny import TINY_ARCHS, save_tiny_model, tiny_world_lm


@pytest.fixture(autouse=True, scope="session")
def _two_threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """model_type -> folder holding a tiny random checkpoint of that architecture."""
    root = tmp_path_factory.mktemp("tiny")
    return {mt: save_tiny_model(mt, root / mt) for mt in TINY_ARCHS}


@pytest.fixture(scope="session")
def trained_tiny() -> dict[str, tuple]:
    """model_type -> (model, tokenizer) of a tiny LM that memorised TINY_TEXTS (gpt2 and llama)."""
    return {mt: tiny_world_lm(model_type=mt) for mt in ("gpt2", "llama")}
