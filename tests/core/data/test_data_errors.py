"""Every kind of bad input raises `DataError` naming file, record and field: one table of broken records."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.data import DataError, read_requests

FIXTURES = Path(__file__).resolve().parent / "fixtures"

Mutation = Callable[[Any], None]


def _set(keys: list, value: Any) -> Mutation:
    def mutate(data: Any) -> None:
        for k in keys[:-1]:
            data = data[k]
        data[keys[-1]] = value

    return mutate


def _del(keys: list) -> Mutation:
    def mutate(data: Any) -> None:
        for k in keys[:-1]:
            data = data[k]
        del data[keys[-1]]

    return mutate


# fmt: off
RECENT, WIKIBIO = "knowedit/recent_test.json", "knowedit/wikibio-test-all.json"
ZSRE_KE = "knowedit/ZsRE-test-all.json"
CONVSENT, SANITATION = "knowedit/blender_test.json", "knowedit/trivia_qa_train.json"
MEND, ROME, EE_CF = "zsre_mend_eval.json", "counterfact.json", "counterfact-edit.json"
HALL, TEMP = "wise/hallucination-edit.json", "wise/temporal-edit.json"
LGK, RSK = "Logical_Generalization", "Relation_Specificity"
LG, RS = f"portability.{LGK}", f"locality.{RSK}"
SUBJ = {"require_subject_in_prompt": True}

# (layout, fixture, mutation, reader kwargs, record, field, problem)
BROKEN: list[tuple[str, str, Mutation, dict, int | str, str, str]] = [
    ("knowedit-recent", RECENT, _del([1, "target_new"]), {}, 1, "target_new", "missing"),
    ("knowedit-recent", RECENT, _set([1, "target_new"], " "), {}, 1, "target_new", "empty string"),
    ("knowedit-recent", RECENT, _set([1, "target_new"], 5), {}, 1, "target_new", "is a JSON number"),
    ("knowedit-recent", RECENT, _set([1, "subject"], None), {}, 1, "subject", "is null"),
    ("knowedit-recent", RECENT, _del([1, "locality"]), {}, 1, "locality", "missing"),
    ("knowedit-recent", RECENT, _set([0, "portability"], []), {}, 0, "portability", "expected an object"),
    ("knowedit-recent", RECENT, _set([0, "portability", "Reasoning"], {}), {}, 0, "portability.Reasoning",
     "expected an array of objects"),
    ("knowedit-recent", RECENT, _set([0, "portability", "Reasoning", 1], "x"), {}, 0,
     "portability.Reasoning[1]", "expected an object"),
    ("knowedit-recent", RECENT, _set([0, "portability", LGK, 0, "ground_truth"], 3), {}, 0,
     f"{LG}[0].ground_truth", "expected a string or a list of aliases"),
    ("knowedit-recent", RECENT, _set([0, "portability", LGK, 0, "ground_truth", 1, 0], {}), {}, 0,
     f"{LG}[0].ground_truth[1][0]", "is a JSON object"),
    ("knowedit-recent", RECENT, _del([0, "locality", RSK, 1, "prompt"]), {}, 0, f"{RS}[1].prompt", "missing"),
    ("knowedit-recent", RECENT, _set([0, "locality", RSK, 1, "prompt"], ""), {}, 0, f"{RS}[1].prompt",
     "empty string"),
    ("knowedit-recent", RECENT, _set([1, "subject"], "Nobody"), SUBJ, 1, "subject", "not found in prompt"),
    ("knowedit-recent", RECENT, _set([1, "subject"], ""), SUBJ, 1, "subject", "empty string"),
    ("knowedit-zsre", ZSRE_KE, _set([0, "rephrase_prompt"], 1), {}, 0, "rephrase_prompt", "expected an"),
    ("knowedit-wikibio", WIKIBIO, _set([0, "labels"], "  "), {}, 0, "labels", "empty string"),
    ("knowedit-wikibio", WIKIBIO, _del([0, "concept"]), {}, 0, "concept", "missing"),
    ("knowedit-wikibio", WIKIBIO, _set([0, "locality", RSK, 1, "prompt"], []), {}, 0, f"{RS}[1].prompt",
     "empty array"),
    ("knowedit-convsent", CONVSENT, _set([2, "pos"], []), {}, 2, "pos", "empty array"),
    ("knowedit-convsent", CONVSENT, _set([1, "neg", 0], ""), {}, 1, "neg[0]", "empty string"),
    ("knowedit-convsent", CONVSENT, _set([1, "neg", 1], 7), {}, 1, "neg[1]", "expected a string"),
    ("knowedit-convsent", CONVSENT, _del([0, "ent"]), {}, 0, "ent", "missing"),
    ("knowedit-sanitation", SANITATION, _del(["K_F", 1, "question"]), {}, "K_F[1]", "question", "missing"),
    ("knowedit-sanitation", SANITATION, _set(["K_R", 0, "target_new"], ""), {}, "K_R[0]", "target_new",
     "empty string"),
    ("zsre-mend", MEND, _set([1, "loc"], "who wrote the hobbit"), {}, 1, "loc", "does not start with"),
    ("zsre-mend", MEND, _del([1, "src"]), {}, 1, "src", "missing"),
    ("zsre-mend", MEND, _set([1, "answers"], {"a": 1}), {}, 1, "answers", "expected a string or a list"),
    ("zsre-mend", MEND, _set([1, "alt"], ""), {}, 1, "alt", "empty string"),
    ("zsre-mend", MEND, _set([1, "subject"], "Nile"), SUBJ, 1, "subject", "not found in src"),
    ("zsre-mend", MEND, _del([1, "portability", "New Question"]), {}, 1, "portability.New Question",
     "missing"),
    ("counterfact-rome", ROME, _set([1, "requested_rewrite", "prompt"], "Ola Berg is a pro"), {}, 1,
     "requested_rewrite.prompt", "exactly once"),
    ("counterfact-rome", ROME, _del([1, "requested_rewrite", "target_new", "str"]), {}, 1,
     "requested_rewrite.target_new.str", "missing"),
    ("counterfact-rome", ROME, _set([1, "requested_rewrite", "target_true"], "football"), {}, 1,
     "requested_rewrite.target_true", "expected an object"),
    ("counterfact-rome", ROME, _set([1, "neighborhood_prompts"], [1]), {}, 1, "neighborhood_prompts[0]",
     "expected a string"),
    ("counterfact-rome", ROME, _del([0, "paraphrase_prompts"]), {}, 0, "paraphrase_prompts", "missing"),
    ("counterfact-easyedit", EE_CF, _del([0, "locality_prompt"]), {}, 0, "locality_prompt", "missing"),
    ("counterfact-easyedit", EE_CF, _set([0, "subject"], "X"), SUBJ, 0, "subject", "not found"),
    ("wise-hallucination", HALL, _set([1, "target_new"], ""), {}, 1, "target_new", "empty string"),
    ("wise-hallucination", HALL, _set([1, "locality_ground_truth"], ["x"]), {}, 1, "locality_ground_truth",
     "expected a string"),
    ("wise-temporal", TEMP, _del([0, "ood_rephrase"]), {}, 0, "ood_rephrase", "missing"),
    ("wise-zsre", MEND, _set([0, "rephrase"], ""), {}, 0, "rephrase", "empty string"),
]
# fmt: on


def _write_broken(tmp_path: Path, fixture: str, mutate: Mutation) -> Path:
    data = copy.deepcopy(json.loads((FIXTURES / fixture).read_text(encoding="utf-8")))
    mutate(data)
    path = tmp_path / Path(fixture).name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "layout,fixture,mutate,kw,record,field,problem",
    BROKEN,
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_broken_record_names_file_record_field(
    tmp_path: Path,
    layout: str,
    fixture: str,
    mutate: Mutation,
    kw: dict,
    record: Any,
    field: str,
    problem: str,
) -> None:
    path = _write_broken(tmp_path, fixture, mutate)
    with pytest.raises(DataError) as info:
        read_requests(layout, path, **kw)
    err = info.value
    assert (err.path, err.record, err.field) == (path, record, field)
    assert str(err).startswith(f"{path}: record {record}: field {field!r}: ")
    assert problem in str(err)


def test_optional_ground_truth_may_be_null(tmp_path: Path) -> None:
    path = _write_broken(tmp_path, ZSRE_KE, _set([0, "ground_truth"], None))
    assert read_requests("knowedit-zsre", path)[0].ground_truth is None


@pytest.mark.parametrize(
    "layout,text,problem",
    [
        ("knowedit-recent", '[{"subject": "a",\n  "prompt": }]', "invalid JSON at line 2 column"),
        ("wise-temporal", '{"prompt": "x"}', "top level is a JSON object, expected an array of records"),
        ("counterfact-rome", "[1]", "record 0: is a JSON number, expected an object"),
        ("knowedit-sanitation", "[]", "top level is a JSON array, expected an object"),
        ("knowedit-sanitation", '{"K_F": {}}', "part 'K_F' is a JSON object, expected an array of records"),
        ("zsre-mend", "\udcff", "cannot read file"),
    ],
)
def test_file_level_errors(tmp_path: Path, layout: str, text: str, problem: str) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    with pytest.raises(DataError) as info:
        read_requests(layout, path)
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(DataError, match=r"absent.json: cannot read file"):
        read_requests("wise-hallucination", path)


def test_data_error_is_a_value_error() -> None:
    err = DataError("recent_test.json", "empty string", record=17, field="target_new")
    assert isinstance(err, ValueError)
    assert str(err) == "recent_test.json: record 17: field 'target_new': empty string"
