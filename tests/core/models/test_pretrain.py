"""World-LM pretraining: outputs, report, run log, reload through load_model, determinism; smoke CLI (slow)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core.models.configs import ModelSize
from core.models.loading import load_model
from core.models.pretrain import RUN_ONLY_FIELDS, main, pretrain_world_lm, stable_report
from core.models.pretrain_config import PretrainConfig, pretrain_profile
from core.models.recall import recall_by_kind
from core.models.tiny import TINY_TEXTS
from core.models.training import TrainSettings
from core.types import Probe

PROBES = {"trained": [Probe(t.rsplit(" ", 1)[0], t.rsplit(" ", 1)[1].rstrip(".")) for t in TINY_TEXTS]}


def _cfg(arch: str, seed: int = 0) -> PretrainConfig:
    return PretrainConfig(
        arch=arch, size=ModelSize(n_layers=2, hidden=64, n_heads=4, max_positions=64), vocab_size=320,
        train=TrainSettings(lr=1e-2, warmup_steps=20, batch_size=16, epochs=150, eval_every=15, log_every=30,
                            seed=seed),
        recall_target=1.0, recall_sample=100,
    )


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_pretrain_writes_a_loadable_checkpoint(tmp_path: Path, arch: str) -> None:
    out = tmp_path / "lm"
    report = pretrain_world_lm(TINY_TEXTS, PROBES, _cfg(arch), out, run_info={"world_profile": "tiny"},
                               run_log=tmp_path / "logs" / "lm.json")
    assert {"model.safetensors", "config.json", "tokenizer.json", "train_report.json"} <= {
        p.name for p in out.iterdir()}
    assert not list(tmp_path.glob(".lm.*"))  # the temporary folder was renamed into place
    saved = json.loads((out / "train_report.json").read_text())
    assert saved == json.loads(json.dumps(stable_report(report)))
    assert saved["recall"] == report["recall"] and report["recall"]["trained"] == 1.0
    assert not set(RUN_ONLY_FIELDS) & set(saved) and "elapsed_s" not in json.dumps(saved)
    run = json.loads((tmp_path / "logs" / "lm.json").read_text())
    assert run["report"]["train_minutes"] == report["train_minutes"] > 0
    assert run["report"]["loss_curve"][0]["elapsed_s"] > 0 and run["manifest"]["git_revision"]
    assert report["stop_reason"] == "target" and report["steps"] < report["planned_steps"]
    assert report["n_params"] > 0 and report["loss_curve"] and report["recall_checks"]
    model, tok = load_model(out)
    assert (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id) == (
        tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    assert recall_by_kind(model, tok, PROBES) == report["recall"]


def test_same_seed_same_folder(tmp_path: Path) -> None:
    """Same inputs -> byte-identical checkpoint folders (so DVC sees the same output hash)."""
    cfg = replace(_cfg("gpt2"), train=replace(_cfg("gpt2").train, epochs=3, eval_every=2, log_every=1))
    for name in ("a", "b"):
        pretrain_world_lm(TINY_TEXTS, PROBES, cfg, tmp_path / name)
    pretrain_world_lm(TINY_TEXTS, PROBES, replace(cfg, train=replace(cfg.train, seed=1)), tmp_path / "c")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    a, c = (load_file(tmp_path / n / "model.safetensors") for n in "ac")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_rerun_replaces_the_folder(tmp_path: Path) -> None:
    cfg = replace(_cfg("llama"), train=replace(_cfg("llama").train, epochs=1, eval_every=0))
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "stale.txt").write_text("old")
    pretrain_world_lm(TINY_TEXTS, PROBES, cfg, tmp_path / "lm")
    assert not (tmp_path / "lm" / "stale.txt").exists()


def test_profiles() -> None:
    for world in ("smoke", "default"):
        for arch in ("gpt2", "llama"):
            cfg = pretrain_profile(world, arch, seed=3)
            assert cfg.arch == arch and cfg.train.seed == 3 and cfg.size.max_positions >= 512
    with pytest.raises(ValueError, match="world profile"):
        pretrain_profile("huge", "gpt2")
    with pytest.raises(ValueError, match="unknown arch"):
        replace(pretrain_profile("smoke", "gpt2"), arch="bert")


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_smoke_profile_cli(tmp_path: Path, arch: str) -> None:
    report = main(["--world-profile", "smoke", "--arch", arch, "--out", str(tmp_path / arch),
                   "--run-log", str(tmp_path / f"{arch}.json")])
    assert report["train_minutes"] <= 1.0
    assert json.loads((tmp_path / f"{arch}.json").read_text())["report"]["recall"] == report["recall"]
    assert report["recall"]["trained"] >= 0.8
    model, tok = load_model(tmp_path / arch)
    assert not model.training
