"""General-ability suite (KnowEdit Table 5) and continual-editing curves (Fig. 4): golden numbers for the
choice rule, the suite against per-item reference scoring, nested random draws, capped T, and that every
procedure leaves the model bit-identical."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from core.config import load_hparams
from core.editors.ft import FTHyperParams
from core.eval.general import (
    CHOICE_MIN_NLL,
    CHOICE_MIN_NLL_MACRO,
    SUITE_METRICS,
    capped_steps,
    choice_accuracy,
    continual_curves,
    draw_requests,
    general_abilities,
    general_suite,
    method_hparams,
    touched_names,
)
from core.eval.scoring import greedy_generate, score_answers
from core.metrics.protocols import GREEDY_TOKEN_EM, TARGET_PPL, TEACHER_FORCED_TOKEN_ACC
from core.models.tiny import build_tiny_model, tiny_world_lm
from core.types import EditRequest, Probe
from core.world.tasks import ChoiceItem, Document, GeneralTasks, QAItem

HPARAMS = Path(__file__).parents[1] / "editors" / "hparams"
E = frozenset()


def _tasks() -> GeneralTasks:
    qa = (
        QAItem("Alice Brown was born in", "Lyon", "P19", E),
        QAItem("Boris Kell works as a", "surgeon", "P106", E),
    )
    return GeneralTasks(
        qa=qa,
        choice=(
            ChoiceItem("Clara Voss was born in", ("Oslo", "Porto", "Riga"), 2, "P19", E),
            ChoiceItem("Erin Page works as a", ("poet", "judge"), 0, "P106", E),
            ChoiceItem("Hugo Marsh was born in", ("Varna", "Turin"), 1, "P19", E),
        ),
        multihop=(QAItem("The city where Greta Holm lives is", "Quito", "P551", E),),
        trivia=(QAItem("Question:Who lives in Oslo?\nAnswer:", "Farid Noor", "trivia", E),),
        sentiment=(ChoiceItem("What do you think of tea?", ("I love tea.", "I hate tea."), 1, "train", E),),
        documents=(Document("Dmitri Lund was born in Lyon.", E), Document("Erin Page works as a poet.", E)),
    )


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model("gpt2", seed=0)


def test_choice_accuracy_golden_numbers() -> None:
    nll = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 0.1]), torch.tensor([2.0, 2.0])]
    micro = choice_accuracy(nll, [0, 0, 0], timing="t")
    assert (micro.value, micro.protocol, micro.timing) == (
        pytest.approx(2 / 3),
        CHOICE_MIN_NLL,
        "t",
    )  # tie -> first
    macro = choice_accuracy(nll, [0, 0, 0], groups=["a", "a", "b"])
    assert (macro.value, macro.protocol) == (pytest.approx((0.5 + 1.0) / 2), CHOICE_MIN_NLL_MACRO)
    with pytest.raises(ValueError, match="out of range"):
        choice_accuracy(nll, [0, 2, 0])
    with pytest.raises(ValueError):
        choice_accuracy(nll, [0, 0])


def test_suite_matches_per_item_reference_scoring(tiny) -> None:
    model, tok = tiny
    tasks = _tasks()
    out = general_suite(model, tok, tasks, timing="pre_edit", batch_size=3)
    assert tuple(out) == SUITE_METRICS and all(v.timing == "pre_edit" for v in out.values())
    assert out["qa_acc"].protocol == TEACHER_FORCED_TOKEN_ACC and out["qa_em"].protocol == GREEDY_TOKEN_EM
    assert out["heldout_ppl"].protocol == TARGET_PPL and out["mc_acc"].protocol == CHOICE_MIN_NLL_MACRO

    def one(prompt, answer):
        return score_answers(model, tok, [prompt], [answer])[0]

    acc = [
        (s.argmax_ids == s.label_ids).double().mean().item()
        for s in (one(x.prompt, x.answer) for x in tasks.qa)
    ]
    assert out["qa_acc"].value == pytest.approx(sum(acc) / len(acc))
    em = []
    for x in tasks.qa:
        s = one(x.prompt, x.answer)
        g = greedy_generate(model, tok, [x.prompt], max_new_tokens=len(s.label_ids))[0]
        em.append(float(list(g.token_ids) == s.label_ids.tolist()))
    assert out["qa_em"].value == pytest.approx(sum(em) / len(em))
    hits = {}
    for c in tasks.choice:
        nll = [-one(c.prompt, o).logprobs.mean().item() for o in c.options]
        hits.setdefault(c.group, []).append(float(min(range(len(nll)), key=nll.__getitem__) == c.gold))
    assert out["mc_acc"].value == pytest.approx(sum(sum(v) / len(v) for v in hits.values()) / len(hits))
    lps = torch.cat([one(*d.text.split(" ", 1)).logprobs for d in tasks.documents])
    assert out["heldout_ppl"].value == pytest.approx(math.exp(-lps.double().mean().item()), rel=1e-5)
    assert out["heldout_ppl"].value > 1.0
    again = general_suite(model, tok, tasks, timing="pre_edit", batch_size=64)
    assert {k: v.value for k, v in again.items()} == pytest.approx(
        {k: v.value for k, v in out.items()}, rel=1e-5
    )


def test_suite_needs_every_task(tiny) -> None:
    tasks = _tasks()
    empty = GeneralTasks(tasks.qa, tasks.choice, (), tasks.trivia, tasks.sentiment, tasks.documents)
    with pytest.raises(ValueError, match="multihop"):
        general_suite(*tiny, empty)


def _requests(n: int) -> list[EditRequest]:
    people = ("Alice Brown", "Boris Kell", "Clara Voss", "Dmitri Lund", "Erin Page")
    return [
        EditRequest(case_id=f"c{i}", prompt=f"{p} was born in", subject=p, target_new="Porto", ground_truth="Lyon",
                    locality={"Relation_Specificity": (Probe(f"{p} works as a", "poet"),)})
        for i, p in enumerate(people[:n])
    ]  # fmt: skip


def test_draws_are_seeded_and_nested() -> None:
    reqs = _requests(5)
    a, b = draw_requests(reqs, 2, 7), draw_requests(reqs, 4, 7)
    assert b[:2] == a and draw_requests(reqs, 4, 7) == b and len({r.case_id for r in b}) == 4
    assert [r.case_id for r in draw_requests(reqs, 5, 7)] != [r.case_id for r in draw_requests(reqs, 5, 8)]
    with pytest.raises(ValueError, match="cannot draw 6 of 5"):
        draw_requests(reqs, 6, 0)
    assert touched_names(reqs[:2]) == ["Alice Brown", "Boris Kell", "Lyon", "Porto"]


def test_capped_steps_golden() -> None:
    assert capped_steps((10, 100, 500, 1000), 220) == {10: (10,), 100: (100,), 220: (500, 1000)}
    assert capped_steps((1000, 10), 5000) == {10: (10,), 1000: (1000,)}
    with pytest.raises(ValueError):
        capped_steps((0,), 10)


def test_method_hparams_loads_registered_methods_and_says_why_others_are_skipped(tmp_path) -> None:
    template = str(HPARAMS / "{method}" / "{model}.yaml")
    hps, skipped = method_hparams(["FT-L", "NoSuchMethod", "ROME"], template, "tiny-gpt2")
    assert isinstance(hps["FT-L"], FTHyperParams) and "ROME" in hps
    assert "not registered" in skipped["NoSuchMethod"]
    hps, skipped = method_hparams(["FT-L"], template, "no-model")
    assert not hps and "no hparams file" in skipped["FT-L"]


@pytest.fixture(scope="module")
def lm():
    return tiny_world_lm(epochs=60)


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_general_abilities_rows_and_restore(lm) -> None:
    model, tok = lm
    before = _state(model)
    hp = load_hparams(HPARAMS / "FT-L" / "tiny-gpt2.yaml", FTHyperParams)
    df = general_abilities(model, tok, _tasks(), _requests(2), {"FT-L": hp}, batch_size=8)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert list(dict.fromkeys(df["method"])) == ["unedited", "FT-L"]
    unedited, ft = df[df.method == "unedited"], df[df.method == "FT-L"]
    assert set(unedited.metric) == set(SUITE_METRICS) and set(unedited.timing) == {"pre_edit"}
    assert set(ft.metric) == {*SUITE_METRICS, "edit/reliability", "edit/locality"}
    assert set(ft.timing) == {"after_all_T"} and set(ft.n_edits) == {2}
    again = general_abilities(model, tok, _tasks(), _requests(2), {"FT-L": hp}, batch_size=8)
    assert again.value.tolist() == pytest.approx(df.value.tolist())


def test_continual_curves_caps_T_and_restores(lm) -> None:
    model, tok = lm
    before = _state(model)
    hp = load_hparams(HPARAMS / "FT-L" / "tiny-gpt2.yaml", FTHyperParams)
    df = continual_curves(model, tok, {"toy": _requests(3)}, {"FT-L": hp}, (1, 2, 5, 10), seed=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert df["T"].tolist() == [1, 2, 3] and df["requested"].tolist() == ["1", "2", "5,10"]
    assert (
        set(df.n_file) == {3}
        and df["edit_succ"].between(0, 100).all()
        and df["locality"].between(0, 100).all()
    )
    assert df["portability"].isna().all()  # the toy requests have no portability probes


def test_method_hparams_skips_a_method_whose_trained_archive_is_missing(tmp_path) -> None:
    """MEND/SERAC hparams that name an untrained archive are skipped (smoke notebooks on a fresh clone)."""
    text = (HPARAMS / "MEND" / "tiny-gpt2.yaml").read_text()
    (tmp_path / "MEND").mkdir()
    (tmp_path / "MEND" / "m.yaml").write_text(
        text.replace("archive: null", f"archive: {tmp_path / 'none.pt'}")
    )
    hps, skipped = method_hparams(["MEND"], str(tmp_path / "{method}" / "{model}.yaml"), "m")
    assert not hps and "trained archive" in skipped["MEND"]
    (tmp_path / "none.pt").write_bytes(b"")
    hps, skipped = method_hparams(["MEND"], str(tmp_path / "{method}" / "{model}.yaml"), "m")
    assert "MEND" in hps and not skipped
    hps, _ = method_hparams(["MEND"], str(HPARAMS / "{method}" / "{model}.yaml"), "tiny-gpt2")
    assert "MEND" in hps  # archive: null is the documented untrained editor, not a missing file
