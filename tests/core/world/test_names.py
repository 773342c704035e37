"""NameForge: seeded, unique, substring-free names that avoid template words."""

from __future__ import annotations

import random

from core.world.names import NameForge, words_of


def test_same_seed_same_names() -> None:
    a = NameForge(random.Random(3))
    b = NameForge(random.Random(3))
    assert [a.name("{} {}") for _ in range(50)] == [b.name("{} {}") for _ in range(50)]


def test_words_are_substring_free_and_avoid_reserved() -> None:
    forge = NameForge(random.Random(0), reserved={"Maren", "river"})
    words = [forge.word().lower() for _ in range(400)]
    assert len(set(words)) == 400
    for i, w in enumerate(words):
        assert w not in {"maren", "river"}
        assert not any(w in v for j, v in enumerate(words) if j != i)


def test_claim_rejects_names_inside_names() -> None:
    forge = NameForge(random.Random(0))
    assert forge.claim("Velk Amora")
    assert not forge.claim("Velk Amora")
    assert not forge.claim("Amora")  # part of an issued name
    assert not forge.claim("Port Velk Amora")  # contains an issued name
    assert forge.claim("Amora Velk")


def test_words_of() -> None:
    assert words_of("Is M. Tolvik still alive? no.") == ["Is", "M", "Tolvik", "still", "alive", "no"]
