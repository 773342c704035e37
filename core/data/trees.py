"""Where each named dataset sits in a data tree, and which reader layout parses it.

The synthetic world is written in the real releases' folder layout (KnowEdit's HF dump, the MEND
ZsRE files, ROME's CounterFact, the WISE bundle), so one table serves both: `dataset_file(root, name)`
finds `<root>/<relative path>` for the world folder or for a user's real download.
"""

from __future__ import annotations

from pathlib import Path

# name -> (reader layout, path relative to the tree root); test splits unless the name says otherwise
DATASETS: dict[str, tuple[str, str]] = {
    "recent": ("knowedit-recent", "wiki_recent/recent_test.json"),
    "recent-train": ("knowedit-recent", "wiki_recent/recent_train.json"),
    "zsre": ("knowedit-zsre", "ZsRE/ZsRE-test-all.json"),
    "wikibio": ("knowedit-wikibio", "WikiBio/wikibio-test-all.json"),
    "wikibio-train": ("knowedit-wikibio", "WikiBio/wikibio-train-all.json"),
    "counterfact": ("knowedit-counterfact", "wiki_counterfact/test_cf.json"),
    "counterfact-train": ("knowedit-counterfact", "wiki_counterfact/train_cf.json"),
    "convsent": ("knowedit-convsent", "convsent/blender_test.json"),
    "convsent-train": ("knowedit-convsent", "convsent/blender_train.json"),
    "sanitation": ("knowedit-sanitation", "Sanitation/trivia_qa_test.json"),
    "sanitation-train": ("knowedit-sanitation", "Sanitation/trivia_qa_train.json"),
    "zsre-mend-train": ("zsre-mend", "zsre/zsre_mend_train.json"),
    "zsre-mend-eval": ("zsre-mend", "zsre/zsre_mend_eval.json"),
    "counterfact-rome": ("counterfact-rome", "counterfact/counterfact.json"),
    "wise-zsre": ("wise-zsre", "wise/ZsRE/zsre_mend_edit.json"),
    "wise-hallucination": ("wise-hallucination", "wise/hallucination/hallucination-edit.json"),
    "wise-temporal": ("wise-temporal", "wise/temporal/temporal-edit.json"),
}


def dataset_file(root: str | Path, name: str) -> tuple[str, Path]:
    """(layout, path) of dataset `name` under `root`; unknown names and missing files raise."""
    try:
        layout, rel = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None
    path = Path(root) / rel
    if not path.is_file():
        raise FileNotFoundError(f"dataset {name!r}: {path} does not exist (layout {layout})")
    return layout, path
