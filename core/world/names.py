"""Syllable-based name generation for the synthetic world.

`NameForge` draws pronounceable made-up words from a seeded `random.Random` and guarantees three
invariants that the probes rely on:

* every made-up word is new, and no made-up word is a substring of another (so no entity name can
  hide inside another one, and a prompt never ends on a prefix of a different entity);
* no made-up word equals (case-insensitively) a word of the template vocabulary it was given;
* every full name handed out is unique, and (checked at the word level) is not a contiguous part
  of another full name.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

_ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "r", "s", "st",
           "t", "th", "tr", "v", "z", "sk", "j", "w", "c", "ch", "sh")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ei", "au")
_CODAS = ("", "", "", "", "n", "r", "l", "s", "m")
_FINALS = ("", "", "a", "o", "en", "ar", "ik", "is", "or", "an", "el", "in", "et", "ia", "ov", "ath", "era")
_MIN_LEN = 4
_DIPHTHONGS = ("ai", "ei", "au", "ia")
_WORD_RE = re.compile(r"[A-Za-z]+")


def words_of(text: str) -> list[str]:
    """The alphabetic words of `text`, in order (apostrophes and digits split words)."""
    return _WORD_RE.findall(text)


class NameForge:
    """Hands out unique, substring-free made-up words and full names (seeded, deterministic)."""

    def __init__(self, rng: random.Random, reserved: Iterable[str] = ()) -> None:
        self._rng = rng
        self._reserved = {w.lower() for w in reserved}
        self._words: set[str] = set()
        self._subs: set[str] = set()  # every substring (len >= _MIN_LEN) of an issued word, lowercase
        self._names: set[tuple[str, ...]] = set()
        self._name_parts: set[tuple[str, ...]] = set()  # contiguous sub-tuples of issued names

    def _candidate(self, syllables: int) -> str:
        r = self._rng
        parts = [r.choice(_ONSETS) + r.choice(_VOWELS) + r.choice(_CODAS) for _ in range(syllables - 1)]
        parts.append(r.choice(_ONSETS) + r.choice(_VOWELS) + r.choice(_FINALS))
        return "".join(parts)

    def _acceptable(self, w: str) -> bool:
        if len(w) < _MIN_LEN + 1 or len(w) > 11 or w in self._reserved or w in self._subs:
            return False
        if re.search(r"(.)\1|[aeiou]{3}|[^aeiou]{4}", w):
            return False
        if any(p not in _DIPHTHONGS for p in re.findall(r"(?=([aeiou]{2}))", w)):
            return False
        return not any(w[i:j] in self._words for i in range(len(w)) for j in range(i + _MIN_LEN, len(w) + 1))

    def word(self, syllables: int | None = None) -> str:
        """A new capitalised made-up word (2-3 syllables unless given)."""
        for _ in range(10_000):
            w = self._candidate(syllables or self._rng.choice((2, 2, 3))).lower()
            if self._acceptable(w):
                self._words.add(w)
                self._subs.update(w[i:j] for i in range(len(w)) for j in range(i + _MIN_LEN, len(w) + 1))
                return w.capitalize()
        raise RuntimeError("NameForge: name space exhausted")

    def claim(self, name: str) -> bool:
        """Register a full name; False (and nothing registered) if it clashes with an issued one."""
        t = tuple(name.split())
        subs = {t[i:j] for i in range(len(t)) for j in range(i + 1, len(t) + 1)}
        if t in self._name_parts or any(s in self._names for s in subs):
            return False
        self._names.add(t)
        self._name_parts.update(subs)
        return True

    def name(self, pattern: str, fixed: Iterable[str] = ()) -> str:
        """A new unique full name from `pattern`, where each "{}" is a fresh word, e.g. "{} {}".

        `fixed` words (for instance a shared family name) fill "{f0}", "{f1}" ... placeholders.
        """
        fixed = tuple(fixed)
        for _ in range(1000):
            n = pattern.count("{}")
            candidate = pattern.format(*[self.word() for _ in range(n)],
                                       **{f"f{i}": f for i, f in enumerate(fixed)})
            if self.claim(candidate):
                return candidate
        raise RuntimeError(f"NameForge: cannot make a unique name for {pattern!r}")

    def pick_name(self, parts: list[list[str]]) -> str | None:
        """Claim the first unused combination (one choice from each list, shuffled); None when all clash."""
        combos = [[p] for p in parts[0]]
        for more in parts[1:]:
            combos = [c + [p] for c in combos for p in more]
        self._rng.shuffle(combos)
        for c in combos:
            if self.claim(" ".join(c)):
                return " ".join(c)
        return None
