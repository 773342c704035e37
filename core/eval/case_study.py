"""Generations before and after each method's edit (KnowEdit §4 case analysis, Table 7).

`edited_generations` edits one request at a time with a registered method, generates from the edit
prompt (greedy, and optionally a seeded top-k sample), and undoes the edit, so every request and every
method starts from the original weights (the single-edit-with-restore protocol). `case_study` does this
for one request and several methods and adds the pre-edit generations; `case_study_markdown` typesets
the rows like KnowEdit Table 7. `method_hparams` resolves a method list against the registry and the
hparams folder `<hparams_dir>/<METHOD>/<model>.yaml` (a method that needs a trained archive names it in
that file), and `editable_methods` drops the methods whose trained artefact is missing (for default
method lists). Nothing here branches on a method name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from core.editors.registry import get_method, resolve_hparams
from core.eval.scoring import GenerationResult, encode_answer, greedy_generate, prompt_seed, sample_generate
from core.types import EditRequest

log = logging.getLogger(__name__)

KNOWEDIT_METHODS: tuple[str, ...] = ("SERAC", "ICE", "AdaLoRA", "MEND", "ROME", "MEMIT", "FT-L", "FT-M")
"""The methods of KnowEdit Table 4 / Fig. 5 / Table 7 (papers.md §2.4), in the paper's column order."""

PRE_EDIT = "pre-edit"


def method_hparams(
    methods: Sequence[str], hparams_dir: str | Path, model: str, *, strict: bool = True
) -> dict[str, Any]:
    """{method: hparams} from `<hparams_dir>/<METHOD>/<model>.yaml` (`core.editors.registry.resolve_hparams`).

    With `strict` a method that cannot run is an error; without it, it is skipped with a warning.
    """
    return resolve_hparams(methods, str(Path(hparams_dir) / "{method}" / "{model}.yaml"), model, strict=strict)[0]


def editable_methods(
    model: nn.Module, tok, request: EditRequest, methods: Mapping[str, Any]
) -> dict[str, Any]:
    """The subset of `methods` whose edit runs on `model`: each edits `request` once and is undone.

    A method whose trained artefact (an archive or checkpoint named in its hparams) is missing raises
    FileNotFoundError and is skipped with a warning; any other error propagates.
    """
    out = {}
    for name, hp in methods.items():
        try:
            get_method(name).edit(model, tok, [request], hp)()
        except FileNotFoundError as e:
            log.warning("skipping %s: %s", name, e)
            continue
        out[name] = hp
    return out


def answer_budget(tok, request: EditRequest, extra_tokens: int) -> int:
    """Tokens to generate for `request`: its target's token count (in context) plus `extra_tokens`."""
    enc = encode_answer(tok, request.prompt, request.target_new)
    return enc.end - enc.start + extra_tokens


def edited_generations(
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    method: str,
    hparams: Any,
    *,
    max_new_tokens: Sequence[int],
    sample_seed: int | None = None,
    sample_max_length: int = 60,
) -> list[tuple[GenerationResult, GenerationResult | None]]:
    """Per request: (greedy generation, sampled generation or None) from its prompt after its own edit.

    Each request is edited alone with `method` and restored before the next one (invariant: the model is
    bit-identical to its state at the call on return). With `sample_seed`, request i also gets a top-5
    sample seeded by `prompt_seed(sample_seed, i)` up to `sample_max_length` tokens.
    """
    edit = get_method(method).edit
    out = []
    for i, r in enumerate(requests):
        undo = edit(model, tok, [r], hparams)
        try:
            (greedy,) = greedy_generate(model, tok, [r.prompt], max_new_tokens=max_new_tokens[i])
            sampled = None
            if sample_seed is not None:
                seeds = [prompt_seed(sample_seed, i)]
                (sampled,) = sample_generate(
                    model, tok, [r.prompt], seeds=seeds, max_length=sample_max_length
                )
        finally:
            undo()
        out.append((greedy, sampled))
    return out


def case_study(
    model: nn.Module,
    tok,
    request: EditRequest,
    methods: Mapping[str, Any],
    *,
    max_new_tokens: int = 20,
    sample_seed: int | None = None,
    sample_max_length: int = 60,
) -> list[dict[str, Any]]:
    """Rows {method, greedy, sampled} for the unedited model ("pre-edit") and after each method's edit.

    `methods` maps registry names to hparams (e.g. from `method_hparams`). Samples use the same seed for
    every row, so rows differ only by the edit.
    """
    rows = []
    with_sample = sample_seed is not None
    (pre,) = greedy_generate(model, tok, [request.prompt], max_new_tokens=max_new_tokens)
    pre_sample = (
        sample_generate(
            model, tok, [request.prompt], seeds=[prompt_seed(sample_seed, 0)], max_length=sample_max_length
        )[0]
        if with_sample
        else None
    )
    rows.append({"method": PRE_EDIT, "greedy": pre.text, "sampled": pre_sample.text if pre_sample else None})
    for name, hp in methods.items():
        ((greedy, sampled),) = edited_generations(
            model,
            tok,
            [request],
            name,
            hp,
            max_new_tokens=[max_new_tokens],
            sample_seed=sample_seed,
            sample_max_length=sample_max_length,
        )
        rows.append({"method": name, "greedy": greedy.text, "sampled": sampled.text if sampled else None})
    return rows


def _cell(text: str | None) -> str:
    return "" if text is None else " ".join(text.split()).replace("|", "\\|")


def case_study_markdown(request: EditRequest, rows: Sequence[Mapping[str, Any]]) -> str:
    """KnowEdit Table 7 as Markdown: the edit, then one row per method with its continuation(s)."""
    sampled = any(r.get("sampled") is not None for r in rows)
    head = ["| Method | Greedy continuation |" + (" Sampled continuation |" if sampled else "")]
    head.append("|---|---|" + ("---|" if sampled else ""))
    body = [
        f"| {r['method']} | {_cell(r['greedy'])} |" + (f" {_cell(r.get('sampled'))} |" if sampled else "")
        for r in rows
    ]
    intro = [
        f"**Edit** ({request.case_id}): *{request.prompt}* "
        f"{_cell(request.ground_truth) or '(none)'} -> **{_cell(request.target_new)}**",
        "",
    ]
    return "\n".join([*intro, *head, *body]) + "\n"
