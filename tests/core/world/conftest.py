"""Shared fixtures: the smoke and default worlds, built once per test session."""

from __future__ import annotations

import pytest

from core.world import World, build_world


@pytest.fixture(scope="session")
def smoke() -> World:
    return build_world("smoke", 0)


@pytest.fixture(scope="session")
def default() -> World:
    return build_world("default", 0)
