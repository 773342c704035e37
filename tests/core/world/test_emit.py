"""Emitted files: byte-identical rebuilds, the real layouts' exact keys and types, world consistency."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from core.world import build_world
from core.world.build import main, write_world
from core.world.portability import NOUNS

S = str
PROBE_NESTED = ("list", ("dict", {"prompt": S, "ground_truth": ("list", ("list", S))}))
PROBE_LIST = ("list", ("dict", {"prompt": S, "ground_truth": ("list", S)}))
PROBE_STR = ("list", ("dict", {"prompt": S, "ground_truth": S}))
TRIVIA = ("list", ("dict", {"question": S, "ground_truth": S, "target_new": S}))
MEND = {"subject": S, "src": S, "pred": S, "rephrase": S, "alt": S, "answers": ("list", S), "loc": S,
        "loc_ans": S, "cond": S}
LOCALITY_TEXT = {"locality_prompt": S, "locality_ground_truth": S}
SCHEMAS: dict[str, Any] = {
    "wiki_recent/recent_*.json": ("list", ("dict", {
        "subject": S, "prompt": S, "target_new": S,
        "portability": ("some", {"Logical_Generalization": PROBE_NESTED, "Reasoning": PROBE_NESTED,
                                 "Subject_Aliasing": PROBE_NESTED}),
        "locality": ("some", {"Relation_Specificity": PROBE_NESTED})})),
    "ZsRE/ZsRE-test-all.json": ("list", ("dict", {
        "subject": S, "target_new": S, "prompt": S, "ground_truth": ("list", S), "rephrase_prompt": S, "cond": S,
        "locality": ("some", {"Relation_Specificity": PROBE_LIST}), "portability": ("some", {"Reasoning": PROBE_STR})})),
    "WikiBio/wikibio-*-all.json": ("list", ("dict", {
        "text": S, "labels": S, "concept": S, "locality": ("dict", {"Relation_Specificity": PROBE_LIST})})),
    "wiki_counterfact/*_cf.json": ("list", ("dict", {
        "subject": S, "prompt": S, "target_new": S, "ground_truth": S,
        "portability": ("some", {"Subject_Aliasing": PROBE_STR, "Reasoning": PROBE_NESTED,
                                 "Logical_Generalization": PROBE_NESTED}),
        "locality": ("some", {"Relation_Specificity": PROBE_STR, "Forgetfulness": PROBE_STR})})),
    "convsent/blender_*.json": ("list", ("dict", {"ent": S, "pos": ("list", S), "neg": ("list", S)})),
    "Sanitation/trivia_qa_train.json": ("dict", {
        "K_F": ("list", ("dict", {"question": S, "ground_truth": S, "target_new": S, "subject": S})), "K_R": TRIVIA}),
    "Sanitation/trivia_qa_test.json": ("dict", {"success": TRIVIA, "locality": TRIVIA}),
    "zsre/zsre_mend_eval_portability_gpt4.json": ("list", ("dict", {
        **MEND, "portability": ("dict", {"New Question": S, "New Answer": S})})),
    "zsre/zsre_mend_*.json": ("list", ("dict", MEND)),
    "wise/ZsRE/zsre_mend_*.json": ("list", ("dict", MEND)),
    "counterfact/counterfact.json": ("list", ("dict", {
        "case_id": int, "pararel_idx": int,
        "requested_rewrite": ("dict", {"prompt": S, "relation_id": S, "subject": S,
                                       "target_new": ("dict", {"str": S, "id": S}),
                                       "target_true": ("dict", {"str": S, "id": S})}),
        "paraphrase_prompts": ("list", S), "neighborhood_prompts": ("list", S), "attribute_prompts": ("list", S),
        "generation_prompts": ("list", S)})),
    "counterfact/counterfact-*.json": ("list", ("dict", {
        "subject": S, "prompt": S, "target_new": S, "ground_truth": S, "rephrase_prompt": S, **LOCALITY_TEXT})),
    "wise/hallucination/hallucination-*.json": ("list", ("dict", {
        "prompt": S, "subject": S, "target_new": S, **LOCALITY_TEXT})),
    "wise/temporal/temporal-*.json": ("list", ("dict", {
        "prompt": S, "subject": S, "target_new": S, "ood_rephrase": S, **LOCALITY_TEXT})),
}
REAL_WISE = Path("/work/shared/data/wise")


def check(value: Any, spec: Any, where: str) -> None:
    """Assert `value` matches `spec` exactly (dict: exact keys; some: a non-strict subset of keys)."""
    if isinstance(spec, type):
        assert type(value) is spec and (spec is not str or value), f"{where}: {value!r} is not a non-empty {spec}"
        return
    kind, inner = spec
    if kind == "list":
        assert isinstance(value, list) and value, f"{where}: expected a non-empty list"
        for i, v in enumerate(value):
            check(v, inner, f"{where}[{i}]")
    else:
        assert isinstance(value, dict), f"{where}: expected an object"
        keys = set(value)
        assert keys == set(inner) if kind == "dict" else keys <= set(inner), f"{where}: keys {sorted(keys)}"
        for k in keys:
            check(value[k], inner[k], f"{where}.{k}")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke")
    main(["--profile", "smoke", "--seed", "0", "--out", str(out)])
    return out


@pytest.fixture(scope="module")
def default_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("default")
    write_world(build_world("default", 0), out)
    return out


def _load(root: Path, pattern: str) -> dict[str, Any]:
    return {p.relative_to(root).as_posix(): json.loads(p.read_text()) for p in sorted(root.glob(pattern))}


def test_rebuild_is_byte_identical(smoke_dir: Path, tmp_path: Path) -> None:
    write_world(build_world("smoke", 0), tmp_path)
    assert _files(tmp_path) == _files(smoke_dir)
    other = tmp_path / "seed1"
    write_world(build_world("smoke", 1), other)
    assert _files(other)["corpus.jsonl"] != _files(smoke_dir)["corpus.jsonl"]


@pytest.mark.parametrize("which", ["smoke", "default"])
def test_every_file_has_the_real_layout(which: str, smoke_dir: Path, default_dir: Path) -> None:
    root = smoke_dir if which == "smoke" else default_dir
    seen: set[str] = set()
    for pattern, spec in SCHEMAS.items():
        files = {k: v for k, v in _load(root, pattern).items() if k not in seen}
        assert files, f"no file for {pattern}"
        for rel, data in files.items():
            check(data, spec, rel)
            seen.add(rel)
    dataset_files = {f for f in _files(root) if f.endswith(".json")} - {"world.json", "probes.json", "stats.json"}
    assert dataset_files == seen
    assert {"world.json", "probes.json", "stats.json", "corpus.jsonl"} <= set(_files(root))


@pytest.mark.skipif(not REAL_WISE.exists(), reason="real WISE samples not present")
def test_wise_keys_equal_the_real_files(smoke_dir: Path) -> None:
    for kind in ("hallucination", "temporal"):
        real = json.loads(next((REAL_WISE / kind).glob("*.json")).read_text())
        ours = json.loads((smoke_dir / f"wise/{kind}/{kind}-edit.json").read_text())
        assert {tuple(sorted(r)) for r in real} == {tuple(sorted(r)) for r in ours}


def test_default_counts(default_dir: Path) -> None:
    stats = json.loads((default_dir / "stats.json").read_text())
    rec = stats["records"]
    assert rec["zsre/zsre_mend_edit.json"] >= 3000 and rec["wise/ZsRE/zsre_mend_edit.json"] >= 3000
    assert rec["Sanitation/trivia_qa_train.json:K_F"] == rec["Sanitation/trivia_qa_test.json:success"] == 80
    assert all(n > 0 for n in rec.values())


def test_reasoning_and_aliases_agree_with_the_world(default_dir: Path) -> None:
    """Parse "The A of the B of the <edited> of S is" and walk B then A from target_new in the world."""
    w = build_world("default", 0)
    by_name = {e.name: e for e in w.entities}
    rid_of = {v: k for k, v in NOUNS.items()}
    checked = 0
    for data in _load(default_dir, "wiki_recent/recent_*.json").values():
        for r in data:
            subject = by_name[r["subject"]]
            for p in r["portability"].get("Reasoning", []):
                chain, name = p["prompt"][len("The "):-len(" is")].rsplit(" of ", 1)
                *hops, edited = chain.split(" of the ")
                assert name == subject.name and r["prompt"].startswith(f"The {edited} of") or edited == "award"
                obj = by_name[r["target_new"]].eid
                for noun in reversed(hops):
                    obj = w.value(obj, rid_of[noun])
                assert p["ground_truth"][0][0] == w.name(obj), p
                checked += 1
            for p in r["portability"].get("Subject_Aliasing", []):
                assert p["prompt"] == r["prompt"].replace(subject.name, subject.alias)
    assert checked > 50


def test_record_invariants(default_dir: Path) -> None:
    for r in _load(default_dir, "ZsRE/ZsRE-test-all.json")["ZsRE/ZsRE-test-all.json"]:
        assert r["cond"] == f"{r['ground_truth'][0]} >> {r['target_new']} || {r['prompt']}"
        assert r["target_new"] != r["ground_truth"][0] and r["subject"] in r["prompt"]
    train = _load(default_dir, "wise/ZsRE/zsre_mend_train.json")["wise/ZsRE/zsre_mend_train.json"]
    edit = _load(default_dir, "wise/ZsRE/zsre_mend_edit.json")["wise/ZsRE/zsre_mend_edit.json"]
    assert all(r["loc"].startswith("nq question: ") and r["alt"] != r["answers"][0] for r in train + edit)
    assert not {r["loc"] for r in train} & {r["loc"] for r in edit}
    assert not {r["src"] for r in train} & {r["src"] for r in edit}
    for r in _load(default_dir, "counterfact/counterfact.json")["counterfact/counterfact.json"]:
        rr = r["requested_rewrite"]
        assert "{}" in rr["prompt"] and rr["target_new"]["id"] != rr["target_true"]["id"]
    for data in _load(default_dir, "wiki_counterfact/*_cf.json").values():
        for r in data:
            assert f"which is not {r['target_new']}," in r["locality"]["Forgetfulness"][0]["prompt"]
    for r in _load(default_dir, "wise/hallucination/hallucination-edit.json")["wise/hallucination/hallucination-edit.json"]:
        assert r["prompt"].startswith(f"This is a Wikipedia passage about {r['subject']}.")
        assert len(r["locality_prompt"]) == 150
    for r in _load(default_dir, "wise/temporal/temporal-edit.json")["wise/temporal/temporal-edit.json"]:
        assert r["subject"] == r["prompt"]
    kf = _load(default_dir, "Sanitation/trivia_qa_train.json")["Sanitation/trivia_qa_train.json"]["K_F"]
    assert Counter(r["ground_truth"] for r in kf).most_common()[-1][1] == 16 and len(kf) == 80
    assert {r["target_new"] for r in kf} == {"I don't know."}


def test_build_ignores_the_hash_seed(tmp_path: Path, smoke_dir: Path) -> None:
    """Separate processes with different PYTHONHASHSEED write the same bytes (no set-order dependence)."""
    import os
    import subprocess
    import sys

    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-m", "core.world.build", "--profile", "smoke", "--out", str(out)],
                       check=True, env=env, capture_output=True, cwd=Path(__file__).resolve().parents[3])
        assert _files(out) == _files(smoke_dir)
