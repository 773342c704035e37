"""Strict config loading, atomic IO and the EditRecord row format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import pytest

from core.config import ConfigError, hparams_from_dict, load_hparams
from core.io import build_manifest, read_jsonl, split_timings, write_json, write_jsonl
from core.types import EditRecord, MetricValue


@dataclass(frozen=True, kw_only=True)
class _HP:
    layers: tuple[int, ...]
    lr: float
    mode: Literal["a", "b"] = "a"


def test_load_hparams_roundtrip_and_lists_become_tuples(tmp_path):
    p = tmp_path / "hp.yaml"
    p.write_text("layers: [1, 2]\nlr: 0.5\nmode: b\n")
    assert load_hparams(p, _HP) == _HP(layers=(1, 2), lr=0.5, mode="b")


@pytest.mark.parametrize("text,needle", [
    ("layers: [1]\nlr: 0.5\nextra: 1\n", "unknown key(s) ['extra']"),
    ("layers: [1]\n", "missing key(s) ['lr']"),
    ("layers: [1]\nlr: 0.5\nmode: c\n", "'mode' = 'c' is not one of"),
    ("- 1\n- 2\n", "expected a mapping"),
    ("layers: [1\n", "cannot read YAML"),
])
def test_load_hparams_errors_name_file_and_key(tmp_path, text, needle):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_hparams(p, _HP)
    assert str(p) in str(e.value) and needle in str(e.value)


def test_base_file_is_overridden_key_by_key_and_chains(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text("layers: [1, 2]\nlr: 0.5\n")
    (tmp_path / "sub" / "mid.yaml").write_text("base: ../root.yaml\nlr: 0.25\n")
    (tmp_path / "sub" / "leaf.yaml").write_text("base: mid.yaml\nlayers: [3]\nmode: b\n")
    assert load_hparams(tmp_path / "sub" / "leaf.yaml", _HP) == _HP(layers=(3,), lr=0.25, mode="b")


@pytest.mark.parametrize("files,needle", [
    ({"a.yaml": "base: b.yaml\nlr: 1\n", "b.yaml": "base: a.yaml\nlayers: [1]\n"}, "form a cycle"),
    ({"a.yaml": "base: missing.yaml\nlr: 1\n"}, "missing.yaml: cannot read YAML"),
    ({"a.yaml": "base: 3\nlr: 1\n"}, "must be a relative file path"),
    ({"a.yaml": "base: b.yaml\nlr: 1\n", "b.yaml": "layers: [1]\nextra: 2\n"}, "a.yaml: unknown key(s) ['extra']"),
])
def test_base_errors_name_the_files(tmp_path, files, needle):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=None) as e:
        load_hparams(tmp_path / "a.yaml", _HP)
    assert needle in str(e.value)


def test_hparams_from_dict_rejects_non_dataclass():
    with pytest.raises(TypeError):
        hparams_from_dict({}, dict)


def test_write_json_is_stable_and_leaves_no_temp_files(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    first = (tmp_path / "a.json").read_bytes()
    write_json(tmp_path / "a.json", {"a": [1, 2], "b": 1})
    assert (tmp_path / "a.json").read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_jsonl_roundtrip_and_bad_line_is_named(tmp_path):
    write_jsonl(tmp_path / "r.jsonl", [{"x": 1}, {"x": 2}])
    assert read_jsonl(tmp_path / "r.jsonl") == [{"x": 1}, {"x": 2}]
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n{oops\n')
    with pytest.raises(ValueError, match="line 2"):
        read_jsonl(tmp_path / "bad.jsonl")


def test_manifest_has_revision_parameters_and_versions():
    m = build_manifest({"n": 3}, seconds=1.5)
    assert m["parameters"] == {"n": 3} and m["seconds"] == 1.5
    assert m["packages"]["torch"] != "absent"
    json.dumps(m)
    assert "git_revision" in m and "platform" in m
    stable = build_manifest({"n": 3}, stable=True)
    assert "git_revision" not in stable and "platform" not in stable and stable["parameters"] == {"n": 3}


def test_split_timings_takes_only_top_level_time_fields():
    report = {"seconds": 2.0, "cf_minutes": 1.5, "eval_seconds": 0.1, "steps": 9, "minutes_cap": 3,
              "nested": {"seconds": 1.0}}
    assert split_timings(report) == (
        {"steps": 9, "minutes_cap": 3, "nested": {"seconds": 1.0}},
        {"cf_minutes": 1.5, "eval_seconds": 0.1, "seconds": 2.0},
    )


def test_edit_record_row_keeps_pre_and_post_tags_apart():
    rec = EditRecord(
        case_id="c/0", method="FT-M",
        pre=(MetricValue("reliability", 0.25, "teacher_forced_token_acc", "pre_edit"),),
        post=(MetricValue("reliability", 1.0, "teacher_forced_token_acc", "single_edit_restore"),),
        extras={"n_edits": 1},
    )
    assert rec.as_row() == {
        "case_id": "c/0", "method": "FT-M", "pre/reliability": 0.25, "post/reliability": 1.0,
        "tag/pre/reliability": "teacher_forced_token_acc@pre_edit",
        "tag/post/reliability": "teacher_forced_token_acc@single_edit_restore", "extra/n_edits": 1,
    }


def test_atomic_writes_get_the_plain_open_mode(tmp_path):
    import os

    from core.io import atomic_write_text

    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
    finally:
        os.umask(mask)


def test_atomic_folder_replaces_on_success_and_leaves_nothing_on_failure(tmp_path):
    import os

    import pytest

    from core.io import atomic_folder

    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as tmp:
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"] and (out / "old.txt").exists()
    mask = os.umask(0o022)
    try:
        with atomic_folder(out) as tmp:
            (tmp / "sub").mkdir()
            (tmp / "sub" / "new.txt").write_text("new")
    finally:
        os.umask(mask)
    assert not (out / "old.txt").exists() and (out / "sub" / "new.txt").read_text() == "new"
    assert out.stat().st_mode & 0o777 == 0o755 and (out / "sub" / "new.txt").stat().st_mode & 0o777 == 0o644
