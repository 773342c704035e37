"""CLI: train a SERAC archive (counterfactual LM + scope classifier) for one base model.

    python -m core.editors.serac_train --model world-gpt2 --data-root data/world/default \\
        --config papers/knowedit/hparams/TRAINING/SERAC/world-gpt2.yaml \\
        --out data/editors/knowedit/SERAC/world-gpt2

reads the base model's tokenizer (`--model`: a world-LM name or any `load_model` path; world LMs are
found under `--models-dir`), the train splits named by the config and the world corpus under
`--data-root`, and writes the archive folder `--out` atomically (`core.editors.serac.archive`).
`--cf-lm-only` writes just the world-corpus-pretrained counterfactual LM (a plain HF folder plus
`cf_lm.json` with its vocabulary fingerprint and pretraining settings); `--run-log FILE` gets the
timings and the full manifest, which the output folders leave out so equal inputs give equal folders; passing such a folder as
`--cf-init` skips pretraining, so base models that share a vocabulary (world-gpt2 and world-llama differ
only in the BOS policy) share one pretraining run. Seeded and deterministic for a fixed thread count.
The work is done by `core.editors.serac.pipeline` (`train_serac`, `pretrain_cf_only`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.editors.serac.pipeline import pretrain_cf_only, train_serac


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="base model: world-LM name or load_model path")
    p.add_argument(
        "--data-root", required=True, type=Path, help="world tree with the train splits and corpus"
    )
    p.add_argument("--config", required=True, type=Path, help="SERACTrainConfig YAML")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--models-dir", default="data/models", type=Path)
    p.add_argument("--cf-init", default=None, type=Path, help="folder written with --cf-lm-only, or a pretrained causal LM (id or folder) with the base's vocabulary")
    p.add_argument("--cf-lm-only", action="store_true", help="only pretrain and write the counterfactual LM")
    p.add_argument(
        "--embedding-cache-dir", default=None, type=Path, help="reuse the classifier's text embeddings"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--run-log", default=None, type=Path, help="JSON file for the run's timings and full manifest")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    common = {
        "models_dir": args.models_dir,
        "seed": args.seed,
        "device": args.device,
        "threads": args.threads,
        "run_log": args.run_log,
    }
    if args.cf_lm_only:
        if args.cf_init is not None:
            p.error("--cf-init and --cf-lm-only exclude each other")
        return pretrain_cf_only(args.model, args.data_root, args.config, args.out, **common)
    return train_serac(
        args.model,
        args.data_root,
        args.config,
        args.out,
        cf_init=args.cf_init,
        embedding_cache_dir=args.embedding_cache_dir,
        **common,
    )


if __name__ == "__main__":
    if "OMP_WAIT_POLICY" not in os.environ:  # see core.models.pretrain._exec_with_passive_omp
        os.execve(
            sys.executable,
            [sys.executable, "-m", "core.editors.serac_train", *sys.argv[1:]],
            {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
        )
    main()
