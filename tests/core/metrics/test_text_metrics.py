"""Golden numbers for fluency (n-gram entropy) and the Sanitation metrics on hand-made texts."""

from __future__ import annotations

import math

import pytest
import torch

from core.metrics import ngram_fluency, position_match, sanitation_locality, sanitation_success, split_words
from core.metrics import protocols as P
from core.metrics.fluency import ngram_entropy, text_fluency

H_2_1 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))  # bigram entropy of "a b a b"


def test_split_words_without_nltk():
    assert split_words("Hello, world! Don't stop.") == ["Hello", ",", "world", "!", "Don't", "stop", "."]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a b a b", (H_2_1 + 2 * 1.0) / 3),  # bigrams ab,ba,ab; trigrams aba,bab
        ("x y z", (1.0 + 2 * 0.0) / 3),  # two distinct bigrams, one trigram
        ("a a a a a", 0.0),  # one repeated n-gram has zero entropy
        ("solo", 0.0),  # fewer words than n: H_n = 0 as in the reference
        ("", 0.0),
    ],
)
def test_text_fluency(text, expected):
    assert text_fluency(text) == pytest.approx(expected)


def test_ngram_entropy_uniform():
    assert ngram_entropy(list("abcdefgh"), 1) == pytest.approx(3.0)


def test_ngram_fluency_is_mean_over_texts_and_unscaled():
    mv = ngram_fluency(["a b a b", "x y z"], timing="post")
    assert mv.value == pytest.approx(((H_2_1 + 2) / 3 + 1 / 3) / 2)
    assert (mv.name, mv.protocol, mv.timing) == ("fluency", P.NGRAM_ENTROPY, "post")
    with pytest.raises(TypeError):
        ngram_fluency("a b a b")
    with pytest.raises(ValueError):
        ngram_fluency([])


def test_sanitation_success_case_insensitive_substring():
    gens = ["I don't know.", " i DON'T KNOW. really", "Paris"]
    mv = sanitation_success(gens)
    assert mv.value == pytest.approx(2 / 3)
    assert mv.protocol == P.SANITATION_SUBSTRING_SUCCESS
    assert sanitation_success(["Paris!"], "paris").value == 1.0


@pytest.mark.parametrize(
    ("pre", "post", "expected"),
    [
        ([1, 2, 3, 4], [1, 9, 3], 0.5),  # positions 0 and 2 match, len(pre) = 4
        ([5], [5, 6], 1.0),  # extra post tokens are ignored
        ([1, 2], [2, 1], 0.0),
        ([], [], 1.0),
        ([], [1], 0.0),
        (["Paris", "is"], ["Paris", "was"], 0.5),
    ],
)
def test_position_match(pre, post, expected):
    assert position_match(pre, post) == pytest.approx(expected)


def test_sanitation_locality_mean_over_items():
    mv = sanitation_locality([[1, 2, 3, 4], torch.tensor([5])], [[1, 9, 3], (5, 6)])
    assert mv.value == pytest.approx(0.75)
    assert mv.protocol == P.SANITATION_POSITION_MATCH
    with pytest.raises(ValueError):
        sanitation_locality([[1]], [])
