"""Text corpora for covariance statistics, named by a short string (the `mom2_dataset` hparam).

Names:
- `world:<profile>[:<seed>]`: the synthetic world's pretraining corpus (`core.world.corpus`), rebuilt in
  memory from (profile, seed) with no file read; what the world LMs were trained on;
- `tiny`: `core.models.tiny.TINY_TEXTS` (tests);
- `hf:<dataset>[:<config>[:<split>]]`: a Hugging Face `datasets` text corpus, streamed (ROME uses
  `wikipedia 20220301.en`, EasyEdit `wikimedia/wikipedia 20231101.en`; easyedit-notes §4). Never used by tests.
`corpus_texts(name, n)` returns the first n texts in the corpus's own (seeded) order.
"""

from __future__ import annotations

from itertools import islice


def corpus_texts(name: str, n_samples: int) -> list[str]:
    """The first `n_samples` texts of corpus `name` (see the module docstring for names)."""
    kind, _, rest = name.partition(":")
    if kind == "tiny":
        from core.models.tiny import TINY_TEXTS

        texts: list[str] = list(TINY_TEXTS)
    elif kind == "world":
        from core.world.corpus import pretraining_corpus
        from core.world.generate import build_world

        profile, _, seed = rest.partition(":")
        texts = pretraining_corpus(build_world(profile or "default", int(seed or 0)))
    elif kind == "hf":
        from datasets import load_dataset

        dataset, config, split = [*rest.split(":"), None, None][:3]
        ds = load_dataset(dataset, config, split=split or "train", streaming=True)
        texts = [row["text"] for row in islice(ds, n_samples) if row.get("text")]
    else:
        raise ValueError(
            f"unknown corpus {name!r}: use 'world:<profile>[:<seed>]', 'tiny' or 'hf:<dataset>...'"
        )
    if not texts:
        raise ValueError(f"corpus {name!r} is empty")
    return texts[:n_samples]
