"""Golden-field tests for the six KnowEdit readers on hand-written fixtures in the real layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.data import (
    DataError,
    read_knowedit_convsent,
    read_knowedit_counterfact,
    read_knowedit_recent,
    read_knowedit_sanitation,
    read_knowedit_wikibio,
    read_knowedit_zsre,
)
from core.data.knowedit import CONVSENT_TEMPLATES
from core.types import Probe

KE = Path(__file__).resolve().parent / "fixtures" / "knowedit"


def test_recent_golden_fields() -> None:
    first, second = read_knowedit_recent(KE / "recent_test.json")
    assert first.case_id == "recent_test/0" and second.case_id == "recent_test/1"
    assert (first.subject, first.prompt, first.target_new) == (
        "Ann Roe",
        "The place of death of Ann Roe is",
        "Oslo",
    )
    assert first.ground_truth is None and first.rephrases == ()
    assert first.portability == {
        "Logical_Generalization": (Probe("Is Ann Roe still alive?", "no"),),
        # the probe with answer [[""]] is dropped
        "Reasoning": (Probe("The continent of the place of death of Ann Roe is", "Europe"),),
        "Subject_Aliasing": (Probe("The place of death of A. Roe is", "Oslo"),),
    }
    assert first.locality == {
        "Relation_Specificity": (
            Probe("The name of the father of Ann Roe is", "Bob Roe"),
            Probe("The field of work of Ann Roe is", "botany"),
        )
    }
    aliases = first.extras["aliases"]
    assert aliases["portability"]["Logical_Generalization"] == (("no", "false"),)
    assert aliases["portability"]["Reasoning"] == (("Europe", "Old Continent"),)
    assert aliases["locality"]["Relation_Specificity"][1] == ("botany", "plant science")
    # an empty alias list drops the probe, and a key left without probes is omitted
    assert second.portability == {}
    assert second.locality == {"Relation_Specificity": (Probe("The sibling of Zed Quill is", "Ada Quill"),)}


def test_zsre_golden_fields() -> None:
    (r,) = read_knowedit_zsre(KE / "ZsRE-test-all.json")
    assert r.case_id == "ZsRE-test-all/0"
    assert (r.subject, r.target_new, r.ground_truth) == ("Xylo", "Noctuidae", "Geometridae")
    assert r.rephrases == ("What family is Xylo?",)
    assert r.extras["cond"].startswith("Geometridae >> Noctuidae")
    assert r.locality["Relation_Specificity"] == (
        Probe("The taxon rank of Xylo is", "genus"),
        Probe("Xylo taxon rank", "genus"),
    )
    assert r.portability == {
        "Reasoning": (Probe("What is the common name of the family Xylo belongs to?", "Owlet moths"),)
    }


def test_counterfact_keeps_forgetfulness() -> None:
    (r,) = read_knowedit_counterfact(KE / "test_cf.json")
    assert r.ground_truth == "mayor of Vienna" and r.target_new == "bishop of Turku"
    assert set(r.locality) == {"Relation_Specificity", "Forgetfulness"}
    assert r.locality["Forgetfulness"][0].answer == "mayor of Vienna"
    assert r.portability["Reasoning"] == (Probe("The country of the see held by Frida Kell is", "Finland"),)
    assert r.extras["aliases"]["portability"]["Reasoning"] == (("Finland", "Suomi"),)


def test_wikibio_maps_text_labels_concept() -> None:
    (r,) = read_knowedit_wikibio(KE / "wikibio-test-all.json", require_subject_in_prompt=True)
    assert r.subject == "jane doe"
    assert r.prompt.startswith("This is a Wikipedia passage about jane doe.")
    assert r.target_new.startswith("She studied at the University of Bergen")
    assert r.portability == {}
    # a probe prompt given as a list is read as its first element
    assert r.locality["Relation_Specificity"][1] == Probe("jane doe field of work", "chemistry")


def test_convsent_seed0_matches_reference_draws() -> None:
    # golden values from EasyEdit's format_consent_for_others with random.seed(0) on the same file
    reqs = read_knowedit_convsent(KE / "blender_test.json", reference_parity=True)
    assert [r.prompt for r in reqs] == [
        "From the sentiment dataset, answer What is your sentiment of jazz? negatively.",
        "From the sentiment dataset, answer What is your position on hiking? negatively.",
        "From the sentiment dataset, answer What is your impression of coffee? postively.",
    ]
    assert [r.target_new for r in reqs] == [
        "Jazz is noisy to me.",
        "Hiking hurts my knees.",
        "Coffee is the best part of my morning.",
    ]
    assert [r.extras["target_sentiment"] for r in reqs] == ["neg", "neg", "pos"]
    mk = reqs[0].extras["metric_kwargs"]
    assert mk["inner_q"] == "What is your attitude about jazz?"
    assert mk["inner_all_qa"][0] == "What do you think of jazz? </s> I love jazz, it is so lively."
    assert mk["all_target"] == [0, 0, 1, 1] and mk["inner_target"] == [1, 1, 1, 1]
    assert len(mk["outer_all_qa"]) == 3 and mk["outer_all_qa"][0].endswith("</s> Hiking clears my head.")
    # the last topic's outer topic wraps to the first
    assert reqs[2].extras["outer_topic"] == "jazz"


def test_convsent_default_spelling_and_extras() -> None:
    reqs = read_knowedit_convsent(KE / "blender_test.json", require_subject_in_prompt=True)
    assert reqs[2].prompt.endswith(" positively.")
    assert all("postively" not in r.prompt for r in reqs)
    r = reqs[0]
    assert r.subject == "jazz" and r.case_id == "blender_test/0"
    assert r.extras["pos"] == ("I love jazz, it is so lively.", "Jazz always cheers me up.")
    assert r.extras["neg"] == ("Jazz is noisy to me.", "I find jazz tiresome.")
    assert r.extras["question"] in {t.format("jazz") for t in CONVSENT_TEMPLATES}
    assert len(CONVSENT_TEMPLATES) == 13


def test_convsent_seed_changes_draws_deterministically() -> None:
    a = read_knowedit_convsent(KE / "blender_test.json", seed=3)
    b = read_knowedit_convsent(KE / "blender_test.json", seed=3)
    assert a == b


def test_sanitation_train_and_test() -> None:
    train = read_knowedit_sanitation(KE / "trivia_qa_train.json")
    assert [r.case_id for r in train] == [
        "trivia_qa_train/K_F/0",
        "trivia_qa_train/K_F/1",
        "trivia_qa_train/K_R/0",
    ]
    kf = train[0]
    assert kf.prompt == "Question:What do bees make from pollen and nectar besides honey?\nAnswer:"
    assert (kf.subject, kf.target_new, kf.ground_truth) == ("bees", "I don't know.", "wax")
    assert kf.extras["part"] == "K_F"
    assert train[2].subject == "" and train[2].target_new == "Lima"
    test = read_knowedit_sanitation(KE / "trivia_qa_test.json")
    assert [r.extras["part"] for r in test] == ["success", "locality", "locality"]
    assert test[1].ground_truth == "Nile" and test[1].extras["aliases"]["ground_truth"] == (
        "Nile",
        "River Nile",
    )


def test_sanitation_part_selection_and_subject_check() -> None:
    kf = read_knowedit_sanitation(KE / "trivia_qa_train.json", parts=("K_F",), require_subject_in_prompt=True)
    assert [r.case_id for r in kf] == ["trivia_qa_train/K_F/0", "trivia_qa_train/K_F/1"]
    with pytest.raises(DataError, match=r"record K_R\[0\]: field 'subject'"):
        read_knowedit_sanitation(KE / "trivia_qa_train.json", require_subject_in_prompt=True)
    with pytest.raises(DataError, match="asked for but absent"):
        read_knowedit_sanitation(KE / "trivia_qa_test.json", parts=("K_F",))


def test_sanitation_needs_a_known_part(tmp_path) -> None:
    path = tmp_path / "trivia.json"
    path.write_text(json.dumps({"train": []}))
    with pytest.raises(DataError, match="none of the parts"):
        read_knowedit_sanitation(path)
