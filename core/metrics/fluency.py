"""Fluency as weighted bi/tri-gram entropy of generated text (ROME's `n_gram_entropy`; KnowEdit §3.5).

For one text, H_n = -sum_g f_g log2 f_g over the relative frequencies f_g of its word n-grams, and
fluency = ((2/3) H_2 + (4/3) H_3) / 2 = (H_2 + 2 H_3) / 3 (easyedit-notes §2.4). The value is in bits
and averaged over texts. KnowEdit tables print it x100 (values around 400-800); that scaling belongs
to the table code, never to this function.

Words come from a regex splitter instead of `nltk.word_tokenize` (no nltk data download): runs of
word characters (with an inner apostrophe part, "don't" stays one word; nltk gives "do" + "n't") and
single punctuation characters as their own tokens. A text with fewer than n words has H_n = 0, as in
the reference (an empty frequency distribution sums to 0).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from core.metrics.protocols import NGRAM_ENTROPY
from core.types import MetricValue

_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def split_words(text: str) -> list[str]:
    """Regex word tokenizer: words (with inner apostrophes) and single punctuation marks."""
    return _WORD.findall(text)


def ngram_entropy(words: Sequence[str], n: int) -> float:
    """H_n in bits of the n-gram frequency distribution of `words` (0.0 when there are no n-grams)."""
    counts = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0


def text_fluency(text: str) -> float:
    """(H_2 + 2 H_3) / 3 for one text, unscaled."""
    words = split_words(text)
    return (ngram_entropy(words, 2) + 2.0 * ngram_entropy(words, 3)) / 3.0


def ngram_fluency(texts: Sequence[str], *, name: str = "fluency", timing: str = "unspecified") -> MetricValue:
    """Mean over texts of (H_2 + 2 H_3) / 3 (unscaled; KnowEdit tables multiply by 100)."""
    if isinstance(texts, str):
        raise TypeError("pass a sequence of texts, not one string")
    if not texts:
        raise ValueError("no texts")
    return MetricValue(name, sum(map(text_fluency, texts)) / len(texts), NGRAM_ENTROPY, timing)
