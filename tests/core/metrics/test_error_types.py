"""Golden cases of the KnowEdit Fig. 5 error-type rules (core.metrics.error_types), one or more per rule."""

from __future__ import annotations

import pytest

from core.metrics.error_types import (
    CORRECT,
    ERROR_TYPE_SHARE,
    ERROR_TYPES,
    IRRELEVANT,
    MEANINGLESS,
    MISSING,
    PARTIAL,
    classify_error,
    error_type_shares,
)


def pieces(s: str) -> list[str]:
    """Token pieces written with "|" between them: " Tr|irc|anhia| Group"."""
    return s.split("|") if s else []


GROUP = pieces(" Tr|irc|anhia| Group")  # target "Trircanhia Group"; the old answer was "Girkau Mills"
LALEI = pieces(" L|alei")
LEXICON = frozenset({"zerbo", "and", "he", "was", "born", "the", "mills", "girkau", "in"})

CASES = [
    # rule 0: correct (text-level prefix at a word boundary, any tokenization, trailing text allowed)
    (GROUP, " Tr|irc|anhia| Group|.| He", CORRECT),
    (GROUP, " Trirc|anhia| Group", CORRECT),
    (pieces(" Lalei"), " Lalei| Lalei| Lalei", CORRECT),  # correctness comes before repetition
    (GROUP, " Tr|irc|anhia| Groups", PARTIAL),  # not at a word boundary: one piece replaced
    # rule 1a: degenerate repetition (3 equal alphanumeric pieces in a row)
    (LALEI, " the| the| the", MEANINGLESS),
    (LALEI, " L|al|al|al", MEANINGLESS),
    (LALEI, " Zer|.|.|.", IRRELEVANT),  # punctuation repeats do not count; "." ends the answer
    # rule 2: missing tokens (answer shorter than the target, or no answer at all)
    (GROUP, " Tr|irc|anhia|.| The", MISSING),
    (GROUP, " Tr|irc|anhia", MISSING),
    (GROUP, ".| He| was", MISSING),
    (GROUP, "", MISSING),
    # rule 3: partial token replacement (some target pieces, the rest replaced)
    (GROUP, " Tr|irc|anhia| Mills|.", PARTIAL),
    (GROUP, " G|irc|au| Group", PARTIAL),
    (LALEI, " the| L|alei", PARTIAL),  # the target inside other text
    # rule 4: knowledge-irrelevant (real words, no shared piece)
    (LALEI, " Zer|bo|.", IRRELEVANT),
    (LALEI, " Z|orb|ak|.", IRRELEVANT),  # without a lexicon a made-up word cannot be told apart
    (pieces(" T|rir|c|an|hia| Group"), " T|omt|reis| Sh|ope|?", IRRELEVANT),  # one-letter pieces do not count
    (pieces(" T|rir|c|an|hia| Group"), " T|rir|ope|?", MISSING),
]


@pytest.mark.parametrize(
    "target, generation, expected", CASES, ids=[f"{c[2]}-{i}" for i, c in enumerate(CASES)]
)
def test_rules_without_lexicon(target, generation, expected):
    assert classify_error(target, pieces(generation)) == expected


@pytest.mark.parametrize(
    "generation, expected",
    [
        (" Z|orb|ak|.", MEANINGLESS),  # "zorbak" is not a word of the lexicon or the target
        (" Zer|bo|.", IRRELEVANT),
        (" Zer|bo| and| Lal", IRRELEVANT),  # the last word may be cut by the token budget: exempt
        (" Zer|bo| and| Lal|.", MEANINGLESS),  # a closed answer: "lal" is checked
        (" L|alei| and| Zer|bo", CORRECT),
        (" the| L|alei", PARTIAL),  # target words are always allowed
    ],
)
def test_lexicon_flags_non_words(generation, expected):
    assert classify_error(LALEI, pieces(generation), lexicon=LEXICON) == expected


def test_repeat_threshold_and_bad_target():
    assert classify_error(LALEI, pieces(" a| a"), repeat=2) == MEANINGLESS
    assert classify_error(LALEI, pieces(" a| a")) == IRRELEVANT
    with pytest.raises(ValueError, match="alphanumeric"):
        classify_error(pieces(" |."), pieces(" a"))


def test_shares_golden():
    types = [CORRECT, CORRECT, MISSING, PARTIAL, PARTIAL, IRRELEVANT]
    values = {m.name: m.value for m in error_type_shares(types, timing="single_edit_restore")}
    assert values == {
        f"error/{MEANINGLESS}": 0.0,
        f"error/{MISSING}": 0.25,
        f"error/{IRRELEVANT}": 0.25,
        f"error/{PARTIAL}": 0.5,
        "failed": pytest.approx(4 / 6),
    }
    tags = {(m.protocol, m.timing) for m in error_type_shares(types, timing="single_edit_restore")}
    assert tags == {(ERROR_TYPE_SHARE, "single_edit_restore")}


def test_shares_edge_cases():
    values = {m.name: m.value for m in error_type_shares([CORRECT])}
    assert values == {**{f"error/{t}": 0.0 for t in ERROR_TYPES}, "failed": 0.0}
    with pytest.raises(ValueError, match="unknown"):
        error_type_shares(["typo"])
    with pytest.raises(ValueError):
        error_type_shares([])
