"""Error types of failed edits (KnowEdit §4, Fig. 5): a pure rule-based classifier of greedy generations.

KnowEdit sorts the failed ZsRE edits of each method into four types: meaningless tokens, missing
tokens, knowledge-irrelevant text and partial token replacement. The paper gives the names, not the
rules (papers.md §2.7), so these rules are ours, stated here once and tested on hand-written cases.

Inputs are token PIECES: the decoded text of each token, with its leading space (e.g. [" Tr", "irc",
"anhia", " Group"]), so that both token-level overlap and whole words can be read. Definitions:
- norm(piece) = piece stripped and lower-cased; an alphanumeric piece has at least one letter or digit.
- end piece: a piece with no letter or digit that contains ".", "?", "!" or a newline (a sentence end).
- answer part A: the generated pieces before the first end piece (all of them when there is none);
  A counts only alphanumeric pieces; T = the alphanumeric pieces of the target; n = |T|.
- overlap: size of the multiset intersection of norm(A) and norm(T), counting only pieces with at least
  two letters/digits (a one-letter piece such as " T" is shared by chance between unrelated names).
- text(x) = the pieces joined, lower-cased, whitespace collapsed, stripped.

Rules, applied in this order (the first that holds gives the type):
0. "correct": text(generation) starts with text(target), followed by the end of the text or by a
   character that is not a letter or digit (KnowEdit Eq. 10's greedy success, read on text).
1. "meaningless_tokens": (a) one alphanumeric piece occurs `repeat` (3) or more times in a row anywhere
   in the generation (degenerate repetition), or (b) with a `lexicon`, some word of the answer part
   (a maximal run of letters/digits in its text) is neither in the lexicon nor a word of the target;
   the last word is exempt when the answer part runs to the end of the generation (it may be cut).
2. "missing_tokens": A is empty (the generation ends or starts a new sentence before any answer), or
   overlap >= 1 and |A| < n (some target tokens appear, and the answer is shorter than the target).
3. "partial_replacement": overlap >= 1 and |A| >= n (some target tokens appear, others are replaced,
   e.g. the new subject's first name with the old answer's last name; or the target sits inside text).
4. "knowledge_irrelevant": overlap = 0 (an answer made of real words that share no token with the target).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

from core.types import MetricValue

CORRECT = "correct"
MEANINGLESS = "meaningless_tokens"
MISSING = "missing_tokens"
IRRELEVANT = "knowledge_irrelevant"
PARTIAL = "partial_replacement"
ERROR_TYPES: tuple[str, ...] = (MEANINGLESS, MISSING, IRRELEVANT, PARTIAL)  # KnowEdit Fig. 5 legend order
LABELS: dict[str, str] = {
    MEANINGLESS: "Meaningless tokens",
    MISSING: "Missing tokens",
    IRRELEVANT: "Knowledge-irrelevant",
    PARTIAL: "Partial token replacement",
    CORRECT: "Correct",
}
ERROR_TYPE_SHARE = "error_type_share_rules_v1"
"""Protocol tag: share of failed edits (rule 0 false) of one type under the rules of this module."""

_WORD = re.compile(r"[^\W_]+")
_END = re.compile(r"[.?!\n]")


def _alnum(piece: str) -> bool:
    return _WORD.search(piece) is not None


def _text(pieces: Iterable[str]) -> str:
    return " ".join("".join(pieces).lower().split())


def _answer_part(pieces: Sequence[str]) -> tuple[list[str], bool]:
    """(pieces before the first end piece, whether the answer part runs to the end of the generation)."""
    for i, p in enumerate(pieces):
        if not _alnum(p) and _END.search(p):
            return list(pieces[:i]), False
    return list(pieces), True


def starts_with_target(target: Sequence[str], generation: Sequence[str]) -> bool:
    """Rule 0: text(generation) begins with text(target) at a word boundary."""
    t, g = _text(target), _text(generation)
    return bool(t) and g.startswith(t) and (len(g) == len(t) or not g[len(t)].isalnum())


def classify_error(
    target: Sequence[str],
    generation: Sequence[str],
    *,
    lexicon: Collection[str] | None = None,
    repeat: int = 3,
) -> str:
    """The error type of one greedy `generation` for `target` (token pieces), or "correct" (rules above)."""
    if not any(_alnum(p) for p in target):
        raise ValueError(f"target {list(target)!r} has no alphanumeric token")
    if starts_with_target(target, generation):
        return CORRECT
    norm = [p.strip().lower() for p in generation]
    run = 1
    for prev, cur in zip(norm, norm[1:], strict=False):
        run = run + 1 if cur == prev and _alnum(cur) else 1
        if run >= repeat:
            return MEANINGLESS
    part, open_end = _answer_part(generation)
    if lexicon is not None:
        words = _WORD.findall("".join(part).lower())
        allowed = set(_WORD.findall(_text(target)))
        if any(w not in lexicon and w not in allowed for w in (words[:-1] if open_end else words)):
            return MEANINGLESS
    answer = [p.strip().lower() for p in part if _alnum(p)]
    wanted = [p.strip().lower() for p in target if _alnum(p)]
    shared = Counter(answer) & Counter(wanted)
    overlap = sum(k for p, k in shared.items() if len("".join(_WORD.findall(p))) >= 2)
    if not answer or (overlap and len(answer) < len(wanted)):
        return MISSING
    return PARTIAL if overlap else IRRELEVANT


def error_type_shares(types: Sequence[str], *, timing: str = "unspecified") -> tuple[MetricValue, ...]:
    """Share of each KnowEdit error type among the failed cases (`types` from `classify_error`).

    Returns one `MetricValue` per type of `ERROR_TYPES` (name "error/<type>"), plus "failed" (the
    failure rate over all cases, tagged the same way). Shares are 0 when nothing failed.
    """
    unknown = sorted(set(types) - {*ERROR_TYPES, CORRECT})
    if unknown or not types:
        raise ValueError(f"need a non-empty list of error types; unknown: {unknown}")
    counts = Counter(types)
    failed = len(types) - counts[CORRECT]
    shares = [
        MetricValue(f"error/{t}", counts[t] / failed if failed else 0.0, ERROR_TYPE_SHARE, timing)
        for t in ERROR_TYPES
    ]
    return (*shares, MetricValue("failed", failed / len(types), ERROR_TYPE_SHARE, timing))
