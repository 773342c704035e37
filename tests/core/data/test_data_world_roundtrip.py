"""Round trip: every dataset file the synthetic world emits (profile "smoke") loads through its reader."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.data import READERS, load_wise_loc_prompts, read_requests

REPO_ROOT = Path(__file__).resolve().parents[3]

# (glob on the path relative to the output folder, layout); the first match wins
LAYOUT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("*recent_*.json", "knowedit-recent"),
    ("*ZsRE-test-all.json", "knowedit-zsre"),
    ("*wikibio-*-all.json", "knowedit-wikibio"),
    ("*_cf.json", "knowedit-counterfact"),
    ("*blender_*.json", "knowedit-convsent"),
    ("*trivia_qa_*.json", "knowedit-sanitation"),
    ("wise/ZsRE/zsre_mend_*.json", "wise-zsre"),
    ("*zsre_mend_*.json", "zsre-mend"),
    ("*multi_counterfact.json", "counterfact-rome"),
    ("*/counterfact.json", "counterfact-rome"),
    ("counterfact.json", "counterfact-rome"),
    ("*counterfact-*.json", "counterfact-easyedit"),
    ("*hallucination-*.json", "wise-hallucination"),
    ("*temporal-*.json", "wise-temporal"),
)


def layout_of(rel: str) -> str | None:
    """The reader layout of an emitted file, by its path relative to the output folder."""
    return next((layout for pattern, layout in LAYOUT_PATTERNS if fnmatch.fnmatch(rel, pattern)), None)


def _raw_count(path: Path) -> int:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return len(raw) if isinstance(raw, list) else sum(len(v) for v in raw.values() if isinstance(v, list))


@pytest.fixture(scope="module")
def smoke_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("core.world.build") is None:
        pytest.skip("core.world.build (the synthetic world CLI) does not exist yet")
    out = tmp_path_factory.mktemp("world")
    proc = subprocess.run(
        [sys.executable, "-m", "core.world.build", "--profile", "smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"world build failed:\n{proc.stderr[-3000:]}"
    return out


def test_every_emitted_dataset_file_loads(smoke_world: Path) -> None:
    seen: dict[str, list[str]] = {}
    for path in sorted(smoke_world.rglob("*.json")):
        rel = path.relative_to(smoke_world).as_posix()
        layout = layout_of(rel)
        if layout is None:
            continue  # not a dataset in a reader layout (manifest, corpus, probes, ...)
        reqs = read_requests(layout, path)
        assert len(reqs) == _raw_count(path), f"{rel}: {len(reqs)} requests from {_raw_count(path)} records"
        seen.setdefault(layout, []).append(rel)
    missing = sorted(set(READERS) - set(seen))
    assert not missing, f"the smoke world emits no file for layouts {missing}; emitted: {seen}"


def test_emitted_subjects_occur_in_prompts(smoke_world: Path) -> None:
    """ROME/MEMIT need the subject in the prompt; Sanitation is checked on its K_F part only."""
    for path in sorted(smoke_world.rglob("*.json")):
        layout = layout_of(path.relative_to(smoke_world).as_posix())
        if layout is None:
            continue
        kw = {}
        if layout == "knowedit-sanitation":
            if "K_F" not in json.loads(path.read_text(encoding="utf-8")):
                continue
            kw = {"parts": ("K_F",)}
        read_requests(layout, path, require_subject_in_prompt=True, **kw)


def test_emitted_wise_train_files_give_loc_prompts(smoke_world: Path) -> None:
    trains = sorted(smoke_world.rglob("wise/*/*train.json"))
    assert trains, "the smoke world emits no WISE train file"
    for path in trains:
        prompts = load_wise_loc_prompts(path)
        assert len(prompts) == _raw_count(path) and all(p.strip() for p in prompts)
