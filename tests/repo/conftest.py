"""Shared helpers for repository-level checks: the repo root and the stored notebooks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def stored_notebooks() -> list[Path]:
    """Notebooks under papers/ that are sources (not papermill outputs)."""
    return sorted(
        p
        for p in (ROOT / "papers").rglob("*.ipynb")
        if "_executed" not in p.parts and ".ipynb_checkpoints" not in p.parts
    )


def tracked_files(pattern: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True, text=True).stdout
    return [ROOT / line for line in out.split()]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
