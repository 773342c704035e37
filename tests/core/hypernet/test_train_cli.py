"""`python -m core.hypernet.train`: named datasets -> output folder (editor, config, curve, metrics, manifest)."""

from __future__ import annotations

import json

import pytest
import yaml

from core.config import load_hparams
from core.editors.mend import MENDHyperParams, apply_mend
from core.hypernet.checkpoint import read_checkpoint
from core.hypernet.train import main
from core.io import read_jsonl
from core.models.tiny import save_tiny_model
from tests.core.editors.conftest import FACTS, make_request
from tests.core.hypernet.conftest import train_config


def _zsre_tree(root):
    records = [
        {"subject": p.split(" was")[0], "src": p, "pred": "", "rephrase": f"In short, {p}", "alt": t,
         "answers": ["Lyon"], "loc": "nq question: who works as a painter", "loc_ans": "Greta Holm", "cond": ""}
        for p, t in FACTS
    ]  # fmt: skip
    (root / "zsre").mkdir(parents=True)
    (root / "zsre" / "zsre_mend_train.json").write_text(json.dumps(records))


@pytest.mark.parametrize("val", [None, "zsre-mend-train"])
def test_cli_writes_the_output_folder(tmp_path, val):
    _zsre_tree(tmp_path / "data")
    model_dir = save_tiny_model("gpt2", tmp_path / "model")
    cfg = train_config(max_steps=4, val_every=2, val_size=2)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v
                                                        for k, v in cfg.__dict__.items()}))  # fmt: skip
    out = tmp_path / "out"
    argv = ["--model", str(model_dir), "--data-root", str(tmp_path / "data"), "--train", "zsre-mend-train",
            "--config", str(tmp_path / "cfg.yaml"), "--out", str(out)]  # fmt: skip
    main(argv + (["--val", val] if val else []) + ["--run-log", str(tmp_path / "run.json")])
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml", "editor.pt", "history.jsonl", "manifest.json", "metrics.json"]  # fmt: skip
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["seconds"] > 0 and [r["step"] for r in run["history_seconds"]] == [0, 2, 4]
    assert run["manifest"]["git_revision"] and "git_revision" not in json.loads((out / "manifest.json").read_text())
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    main(argv + (["--val", val] if val else []))  # same inputs -> byte-identical folder (same DVC hash)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["n_train"] == (8 if val is None else 10) and metrics["n_val"] == 2 and metrics["steps"] == 4
    )
    assert [row["step"] for row in read_jsonl(out / "history.jsonl")] == [0, 2, 4]
    assert read_checkpoint(out / "editor.pt")["info"]["val_data"] == (val or "last 2 of zsre-mend-train")
    hp = load_hparams(out / "config.yaml", type(cfg))
    assert hp == cfg
    edit_hp = MENDHyperParams(**cfg.net_dict(), archive=str(out / "editor.pt"))
    from core.models.loading import load_model

    model, tok = load_model(str(model_dir))
    apply_mend(model, tok, [make_request(0)], edit_hp)()


def test_cli_needs_enough_records_to_hold_out(tmp_path):
    _zsre_tree(tmp_path / "data")
    (tmp_path / "cfg.yaml").write_text(
        yaml.safe_dump(
            {k: list(v) if isinstance(v, tuple) else v for k, v in train_config(val_size=10).__dict__.items()}
        )
    )
    with pytest.raises(ValueError, match="cannot spare val_size=10"):
        main(["--model", "unused", "--data-root", str(tmp_path / "data"), "--train", "zsre-mend-train",
              "--config", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "out")])  # fmt: skip
