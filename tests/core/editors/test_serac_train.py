"""SERAC training: data construction, classifier loss and fit, counterfactual examples, the whole recipe."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import yaml

from core.editors.serac import SERACHyperParams, apply_serac
from core.editors.serac import cf_model as cfm
from core.editors.serac.archive import load_archive, vocab_fingerprint
from core.editors.serac.classifier import ScopeHead, embed_texts, fit_scope_head, pair_decisions, scope_bce
from core.editors.serac.data import CFExample, cf_examples, relation_template, scope_pairs, split_requests
from core.editors.serac.pipeline import check_cf_init
from core.editors.serac.train import SERACTrainConfig, build_archive
from core.editors.serac_train import main
from core.eval.scoring import score_answers
from core.models.loading import load_model
from core.models.tiny import TINY_TEXTS, build_tiny_model, build_tiny_tokenizer, save_tiny_model
from core.models.tokenizer import save_tokenizer
from core.types import EditRequest, Probe


def _r(i: int, subject: str, template: str, target: str, **kw) -> EditRequest:
    return EditRequest(
        case_id=f"r{i}", subject=subject, prompt=template.format(subject), target_new=target, **kw
    )


REQS = [
    _r(
        0,
        "Alice Brown",
        "{} was born in",
        "Riga",
        rephrases=("The birthplace of Alice Brown is",),
        locality={"Relation_Specificity": (Probe("Alice Brown works as a", "poet"),)},
        portability={"Subject_Aliasing": (Probe("A. Brown was born in", "Riga"),)},
    ),
    _r(1, "Alice Brown", "{} works as a", "pilot"),  # same subject, other relation
    _r(2, "Boris Kell", "{} was born in", "Oslo"),  # same relation, other subject
    _r(3, "Alice Brown", "{} was born in", "Turin"),  # the same fact as r0: never r0's negative
]


def test_relation_template_cuts_the_subject():
    assert relation_template(REQS[0]) == "{} was born in"


def test_scope_pairs_labels_and_hard_negatives():
    pairs = scope_pairs(REQS, [0, 0, 0, 0], n_hard=5, n_random=0, seed=0)
    mine = [p for p in pairs if p.edit == 0]
    pos = {p.text for p in mine if p.label == 1}
    assert pos == {
        "Alice Brown was born in",
        "Alice Brown was born in Riga",
        "The birthplace of Alice Brown is",
        "The birthplace of Alice Brown is Riga",
        "A. Brown was born in",
        "A. Brown was born in Riga",
    }
    kinds = {(p.kind, p.text) for p in mine if p.label == 0}
    assert ("locality", "Alice Brown works as a poet") in kinds
    assert ("same_subject", "Alice Brown works as a pilot") in kinds
    assert ("same_relation", "Boris Kell was born in Oslo") in kinds
    assert not any("Turin" in text for _, text in kinds)  # r3 states the same fact
    other_group = scope_pairs(REQS, [0, 1, 1, 0], n_hard=5, n_random=0, seed=0)
    assert not any(
        p.kind.startswith("same") and p.edit == 0 for p in other_group
    )  # hard negatives within a dataset


def test_cf_examples_and_split():
    ex = cf_examples(REQS[:1], "{prompt} {target}", out_of_scope_too=False)
    assert [(e.prompt, e.answer) for e in ex] == [
        ("Alice Brown was born in", "Riga"),
        ("The birthplace of Alice Brown is", "Riga"),
        ("A. Brown was born in", "Riga"),
    ]
    assert all(e.edit_text == "Alice Brown was born in Riga" and e.in_scope for e in ex)
    with_loc = cf_examples(REQS[:1], "{prompt} {target}", out_of_scope_too=True)
    assert with_loc[-1] == CFExample("Alice Brown was born in Riga", "Alice Brown works as a", "poet", False)
    aug = cf_examples(REQS, "{prompt} {target}", out_of_scope_too=False, random_targets=2, seed=3)
    extra = aug[len(cf_examples(REQS, "{prompt} {target}", out_of_scope_too=False)) :]
    assert len(extra) == 2 * (2 + 1 + 1 + 1)  # per request: prompt + rephrases, twice
    assert all(e.edit_text == f"{e.prompt} {e.answer}" or e.edit_text.endswith(f" {e.answer}") for e in extra)
    assert {e.answer for e in extra} <= {"Riga", "pilot", "Oslo", "Turin"}
    assert aug == cf_examples(REQS, "{prompt} {target}", out_of_scope_too=False, random_targets=2, seed=3)
    assert split_requests(list(range(10)), 0.25) == (list(range(7)), [7, 8, 9])  # type: ignore[arg-type]
    assert split_requests(list(range(3)), 0.0) == ([0, 1, 2], [])  # type: ignore[arg-type]


def test_scope_bce_golden_numbers():
    log_p = torch.tensor([0.0, math.log(0.5), math.log(0.25), math.log(0.5)])
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0])
    expected = (0.0 + math.log(2)) / 2 + (-math.log(0.75) + math.log(2)) / 2
    assert scope_bce(log_p, labels).item() == pytest.approx(expected, rel=1e-5)


def test_fit_scope_head_separates_a_toy_problem():
    emb = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    keys, queries = torch.tensor([0, 0, 2, 2, 0]), torch.tensor([1, 2, 3, 0, 3])
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0])
    torch.manual_seed(0)
    head = ScopeHead(3, 16, 4)
    losses = fit_scope_head(head, emb, keys, queries, labels, epochs=200, lr=1e-2, batch_size=8, seed=0)
    assert losses[-1] < losses[0]
    assert pair_decisions(head, emb, keys, queries, 0.5).tolist() == [True, False, False, False, False]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_cf_examples_encode_context_then_row(arch):
    tok = build_tiny_tokenizer(arch)
    (enc,) = cfm.encode_cf_examples(
        tok, [CFExample("Alice Brown was born in Riga", "Hugo Marsh was born in", "Oslo", True)]
    )
    ctx = tok("Alice Brown was born in Riga")["input_ids"] + [tok.eos_token_id]
    assert list(enc.ids[: len(ctx)]) == ctx
    assert tok.decode(enc.ids[len(ctx) :], skip_special_tokens=True) == "Hugo Marsh was born in Oslo"
    assert tok.decode(enc.ids[enc.start : enc.end]).strip() == "Oslo" and enc.end == len(enc.ids)
    batch = cfm.collate([enc], tok.pad_token_id)
    assert (batch["labels"] != -100).sum() == enc.end - enc.start


def _cfg(**kw) -> SERACTrainConfig:
    base = dict(
        train_datasets=("a", "b"),
        val_fraction=0.25,
        edit_template="{prompt} {target}",
        cf_layers=1,
        cf_hidden=32,
        cf_heads=2,
        cf_random_targets=1,
        cf_max_positions=128,
        pretrain_epochs=2,
        pretrain_lr=3e-3,
        pretrain_batch_size=8,
        pretrain_warmup_steps=2,
        cf_epochs=2,
        cf_lr=3e-3,
        cf_batch_size=8,
        cf_out_of_scope=True,
        encoder="hashing-bow-64",
        head_hidden=16,
        head_dim=8,
        cls_epochs=3,
        cls_lr=1e-2,
        cls_batch_size=32,
        hard_negatives=1,
        random_negatives=1,
    )
    return SERACTrainConfig(**{**base, **kw})


def _tiny_datasets() -> dict[str, list[EditRequest]]:
    """24 edits over the tiny vocabulary (every TINY_TEXTS sentence, target = its last word), two datasets."""
    facts = [t.rstrip(".").rsplit(" ", 1) for t in TINY_TEXTS]
    people = [facts[k][0].split(" was born")[0] for k in range(0, len(facts), 3)]
    reqs = []
    for i, (p, t) in enumerate(facts):
        loc_p, loc_a = facts[(i + 1) % len(facts)]
        reqs.append(
            EditRequest(
                case_id=f"t{i}",
                prompt=p,
                subject=people[i // 3],
                target_new=t,
                rephrases=(f"In short, {p}",),
                locality={"NQ": (Probe(loc_p, loc_a),)},
            )
        )
    return {"a": reqs[:12], "b": reqs[12:]}


def test_build_archive_is_deterministic_and_reports_validation():
    tok = build_tiny_tokenizer("gpt2")
    runs = [
        build_archive(tok, len(tok), _tiny_datasets(), _cfg(), seed=1, corpus=TINY_TEXTS) for _ in range(2)
    ]
    (a, report), (b, _) = runs
    for x, y in zip(a.cf_model.state_dict().values(), b.cf_model.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    for x, y in zip(a.head.state_dict().values(), b.head.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    assert report["n_train_edits"] == 18 and report["n_val_edits"] == 6 and report["pretrain_steps"] > 0
    assert set(report["classifier"]["val_accuracy"]) >= {"in_scope", "locality"}
    assert 0.0 <= report["cf_val_in_scope_acc"] <= 1.0
    a.check_tokenizer(tok)


def test_config_and_cf_init_checks():
    with pytest.raises(ValueError, match="edit_template"):
        _cfg(edit_template="{prompt}")
    with pytest.raises(ValueError, match="val_fraction"):
        _cfg(val_fraction=1.0)
    tok = build_tiny_tokenizer("gpt2")
    with pytest.raises(ValueError, match="vocabulary"):
        check_cf_init(tok, {"vocab_fingerprint": "x", "config": {}}, _cfg(), "cf")
    with pytest.raises(ValueError, match="cf_layers"):
        check_cf_init(
            tok, {"vocab_fingerprint": vocab_fingerprint(tok), "config": {"cf_layers": 9}}, _cfg(), "cf"
        )


def test_cli_rejects_cf_init_with_cf_lm_only(tmp_path):
    with pytest.raises(SystemExit):
        main(
            [
                "--model",
                "m",
                "--data-root",
                str(tmp_path),
                "--config",
                "c.yaml",
                "--out",
                str(tmp_path / "o"),
                "--cf-lm-only",
                "--cf-init",
                str(tmp_path),
            ]
        )


def _tiny_tree(root):
    """A data tree with a zsre-mend train split over the tiny vocabulary and a corpus.jsonl."""
    rows = [
        {
            "subject": r.subject,
            "src": r.prompt,
            "rephrase": r.rephrases[0],
            "alt": r.target_new,
            "answers": ["x"],
            "loc": f"nq question: {r.locality['NQ'][0].prompt}",
            "loc_ans": r.locality["NQ"][0].answer,
        }
        for rs in _tiny_datasets().values()
        for r in rs
    ]
    (root / "zsre").mkdir(parents=True)
    (root / "zsre" / "zsre_mend_train.json").write_text(json.dumps(rows))
    (root / "corpus.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TINY_TEXTS))
    return root


def test_cli_pretrains_shares_and_trains_an_archive(tmp_path):
    tree, model_dir = _tiny_tree(tmp_path / "world"), save_tiny_model("gpt2", tmp_path / "model")
    cfg = tmp_path / "serac.yaml"
    cfg.write_text(yaml.safe_dump({**dataclasses.asdict(_cfg()), "train_datasets": ["zsre-mend-train"]}))
    common = ["--model", str(model_dir), "--data-root", str(tree), "--config", str(cfg)]
    meta = main([*common, "--out", str(tmp_path / "cf-lm"), "--cf-lm-only"])
    assert meta["pretrain_steps"] > 0 and (tmp_path / "cf-lm" / "cf_lm.json").is_file()
    serac = [*common, "--out", str(tmp_path / "serac"), "--cf-init", str(tmp_path / "cf-lm")]
    report = main([*serac, "--run-log", str(tmp_path / "run.json")])
    assert report["n_train_edits"] == 18 and "pretrain_steps" not in report  # h came from --cf-init
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["total_minutes"] > 0 and run["manifest"]["git_revision"]
    saved = json.loads((tmp_path / "serac" / "train_report.json").read_text())
    assert "total_minutes" not in saved and saved["n_train_edits"] == 18
    files = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "serac").rglob("*") if p.is_file()}
    main(serac)  # same inputs -> byte-identical archive (same DVC hash)
    assert {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "serac").rglob("*") if p.is_file()} == files
    archive = load_archive(str(tmp_path / "serac"))
    assert archive.info["config"]["cf_layers"] == 1 and archive.encoder_name == "hashing-bow-64"
    model, tok = load_model(model_dir)
    req = _tiny_datasets()["a"][0]
    undo = apply_serac(model, tok, [req], SERACHyperParams(archive=str(tmp_path / "serac"), threshold=0.5))
    score_answers(model, tok, [req.prompt], [req.target_new])  # runs through the router
    undo()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**yaml.safe_load(cfg.read_text()), "cf_layers": 2}))
    with pytest.raises(ValueError, match="cf_layers"):
        main(
            [
                "--model",
                str(model_dir),
                "--data-root",
                str(tree),
                "--config",
                str(bad),
                "--out",
                str(tmp_path / "x"),
                "--cf-init",
                str(tmp_path / "cf-lm"),
            ]
        )


def test_cf_init_takes_any_pretrained_lm_with_the_base_vocabulary(tmp_path):
    """The paper profile: h is a given small pretrained LM (EasyEdit: llama-160m for LLaMA bases), fine-tuned
    without corpus pretraining; an LM over another vocabulary is refused before any training."""
    tree, base = _tiny_tree(tmp_path / "world"), save_tiny_model("llama", tmp_path / "base")
    cf_dir = save_tiny_model("llama", tmp_path / "cf", seed=1)
    cfg = tmp_path / "serac.yaml"
    cfg.write_text(yaml.safe_dump({**dataclasses.asdict(_cfg()), "train_datasets": ["zsre-mend-train"]}))
    common = ["--model", str(base), "--data-root", str(tree), "--config", str(cfg)]
    report = main([*common, "--out", str(tmp_path / "serac"), "--cf-init", str(cf_dir)])
    assert "pretrain_steps" not in report and report["cf_examples"] > 0
    archive = load_archive(str(tmp_path / "serac"))
    given, _ = load_model(cf_dir)
    assert archive.cf_model.config.model_type == "llama"
    assert archive.cf_model.config.num_hidden_layers == given.config.num_hidden_layers  # not cf_layers (1)
    moved = [not torch.equal(a, b) for a, b in zip(archive.cf_model.state_dict().values(), given.state_dict().values(), strict=True)]
    assert any(moved)  # fine-tuned on the [edit; query] -> answer examples
    other, other_tok = build_tiny_model("llama", tokenizer=build_tiny_tokenizer("llama", vocab_size=300))
    other.save_pretrained(tmp_path / "other", safe_serialization=True)
    save_tokenizer(other_tok, tmp_path / "other")
    with pytest.raises(ValueError, match="other.*another vocabulary"):
        main([*common, "--out", str(tmp_path / "x"), "--cf-init", str(tmp_path / "other")])
    assert not (tmp_path / "x").exists()


def test_embed_texts_cache_is_keyed_by_encoder_and_texts(tmp_path):
    a = embed_texts("hashing-bow-16", ["a b", "c"], tmp_path)
    assert len(list(tmp_path.glob("serac-emb-*.pt"))) == 1
    assert torch.equal(embed_texts("hashing-bow-16", ["a b", "c"], tmp_path), a)
    embed_texts("hashing-bow-16", ["c", "a b"], tmp_path)
    assert len(list(tmp_path.glob("serac-emb-*.pt"))) == 2
    assert torch.equal(embed_texts("hashing-bow-16", ["a b", "c"], None), a)
