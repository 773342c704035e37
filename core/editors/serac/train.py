"""Training SERAC's two parts on the train splits: the counterfactual LM h and the scope classifier g.

`build_archive` is the whole recipe on in-memory data (Mitchell et al. 2022, §3; both parts are trained
separately, as in the original code's supervised setting):
1. h: a small GPT-2 pretrained on the world corpus (or given, pretrained earlier by `pretrain_cf_only`),
   then fine-tuned on [edit; query] -> answer examples of the training edits (`cf_model`);
2. g: the dense classifier head on frozen sentence embeddings, trained with BCE on in-scope / out-of-scope
   pairs including same-subject and same-relation hard negatives (`classifier`, `data`).
The last `val_fraction` edits of each dataset are held out; the report gives h's answer accuracy and g's
decision accuracy on them (per pair kind), so a weak part is visible before any edit is run.
The file-level entry point (data tree and base model in, archive folder out) is
`core.editors.serac.pipeline.train_serac`. Same data, config, seed and thread count -> same archive.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.editors.serac import cf_model as cfm
from core.editors.serac.archive import SeracArchive, tokenizer_fingerprint
from core.editors.serac.classifier import ScopeHead, embed_texts, fit_scope_head, pair_decisions
from core.editors.serac.data import ScopePair, cf_examples, scope_pairs, split_requests
from core.models.configs import ModelSize
from core.models.training import TrainSettings
from core.types import EditRequest

log = logging.getLogger(__name__)

PRETRAIN_FIELDS = (
    "cf_layers",
    "cf_hidden",
    "cf_heads",
    "cf_max_positions",
    "pretrain_epochs",
    "pretrain_lr",
    "pretrain_batch_size",
    "pretrain_warmup_steps",
)


@dataclass(frozen=True, kw_only=True)
class SERACTrainConfig:
    """Training settings of both SERAC parts (papers/<paper>/hparams/TRAINING/SERAC/<model>.yaml)."""

    train_datasets: tuple[str, ...]  # core.data.trees names of the train splits
    val_fraction: float  # last fraction of each dataset held out for the report
    edit_template: str  # edit descriptor z_e as text, with {prompt} and {target}
    cf_layers: int  # counterfactual GPT-2 sizes
    cf_hidden: int
    cf_heads: int
    cf_max_positions: int
    pretrain_epochs: int  # world-corpus pretraining of h (0 = none)
    pretrain_lr: float
    pretrain_batch_size: int
    pretrain_warmup_steps: int
    cf_epochs: int  # [edit; query] -> answer fine-tuning of h
    cf_lr: float
    cf_batch_size: int
    cf_out_of_scope: bool  # also fine-tune h on locality probes (original answers)
    cf_random_targets: int  # per edit, copies with a random target (prompt + rephrases; see data.cf_examples)
    encoder: str  # frozen sentence encoder of g (core.editors.retrieval names)
    head_hidden: int
    head_dim: int
    cls_epochs: int
    cls_lr: float
    cls_batch_size: int
    hard_negatives: int  # per edit, same-subject and same-relation edits used as negatives (each)
    random_negatives: int  # per edit, random other edits used as negatives

    def __post_init__(self) -> None:
        if not self.train_datasets:
            raise ValueError("train_datasets is empty")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if "{prompt}" not in self.edit_template or "{target}" not in self.edit_template:
            raise ValueError(f"edit_template needs {{prompt}} and {{target}}, got {self.edit_template!r}")
        for name in (
            "cf_layers",
            "cf_hidden",
            "cf_heads",
            "cf_max_positions",
            "cf_epochs",
            "cf_batch_size",
            "pretrain_batch_size",
            "head_hidden",
            "head_dim",
            "cls_epochs",
            "cls_batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if (
            min(self.pretrain_epochs, self.pretrain_warmup_steps, self.hard_negatives, self.random_negatives)
            < 0
        ):
            raise ValueError("epochs, warmup steps and negative counts must be >= 0")

    @property
    def cf_size(self) -> ModelSize:
        return ModelSize(
            n_layers=self.cf_layers,
            hidden=self.cf_hidden,
            n_heads=self.cf_heads,
            max_positions=self.cf_max_positions,
        )

    def pretrain_settings(self, seed: int) -> TrainSettings:
        return TrainSettings(
            lr=self.pretrain_lr,
            warmup_steps=self.pretrain_warmup_steps,
            batch_size=self.pretrain_batch_size,
            epochs=max(1, self.pretrain_epochs),
            log_every=100,
            seed=seed,
        )


def new_pretrained_cf(
    tok,
    vocab_size: int,
    corpus: Sequence[str],
    cfg: SERACTrainConfig,
    *,
    seed: int,
    device: str | torch.device = "cpu",
) -> tuple[Any, dict[str, Any]]:
    """A fresh h of `cfg.cf_size`, pretrained on `corpus` for `cfg.pretrain_epochs` epochs (0: untrained)."""
    model = cfm.make_cf_model(tok, vocab_size, cfg.cf_size, seed)
    info: dict[str, Any] = {"pretrain_steps": 0, "pretrain_minutes": 0.0}
    if cfg.pretrain_epochs and corpus:
        train_log = cfm.pretrain_cf_lm(model, tok, corpus, cfg.pretrain_settings(seed), device=device)
        info = {
            "pretrain_steps": train_log.steps,
            "pretrain_minutes": train_log.seconds / 60,
            "pretrain_loss_curve": train_log.loss_curve,
        }
    model.eval()
    return model, info


def _scope_tensors(pairs: Sequence[ScopePair], key_texts: Sequence[str], index: Mapping[str, int]):
    keys = torch.tensor([index[key_texts[p.edit]] for p in pairs], dtype=torch.long)
    queries = torch.tensor([index[p.text] for p in pairs], dtype=torch.long)
    return keys, queries, torch.tensor([p.label for p in pairs], dtype=torch.float32)


def _accuracy_by_kind(pairs: Sequence[ScopePair], decisions: torch.Tensor) -> dict[str, float]:
    out: dict[str, list[bool]] = {}
    for p, d in zip(pairs, decisions.tolist(), strict=True):
        out.setdefault(p.kind, []).append(bool(d) == bool(p.label))
    return {k: sum(v) / len(v) for k, v in sorted(out.items())}


def train_classifier(
    train: Sequence[EditRequest],
    train_groups: Sequence[int],
    val: Sequence[EditRequest],
    val_groups: Sequence[int],
    cfg: SERACTrainConfig,
    *,
    seed: int,
    embedding_cache_dir: str | Path | None = None,
) -> tuple[ScopeHead, dict]:
    """Fit g's head on pairs of the training edits; report decision accuracy (p > 0.5) per pair kind."""
    sets = {}
    for name, reqs, groups in (("train", train, train_groups), ("val", val, val_groups)):
        keys = [cfg.edit_template.format(prompt=r.prompt, target=r.target_new) for r in reqs]
        sets[name] = (
            scope_pairs(reqs, groups, n_hard=cfg.hard_negatives, n_random=cfg.random_negatives, seed=seed),
            keys,
        )
    texts = sorted({t for pairs, keys in sets.values() for t in [*keys, *(p.text for p in pairs)]})
    index = {t: i for i, t in enumerate(texts)}
    t0 = time.perf_counter()
    emb = embed_texts(cfg.encoder, texts, embedding_cache_dir)  # (U, in_dim)
    log.info("embedded %d distinct texts in %.0fs", len(texts), time.perf_counter() - t0)
    torch.manual_seed(seed)
    head = ScopeHead(emb.shape[1], cfg.head_hidden, cfg.head_dim)
    tr_pairs, tr_keys = sets["train"]
    losses = fit_scope_head(
        head,
        emb,
        *_scope_tensors(tr_pairs, tr_keys, index),
        epochs=cfg.cls_epochs,
        lr=cfg.cls_lr,
        batch_size=cfg.cls_batch_size,
        seed=seed,
    )
    report: dict[str, Any] = {"n_texts": len(texts), "losses": losses}
    for name, (pairs, keys) in sets.items():
        if pairs:
            k, q, _ = _scope_tensors(pairs, keys, index)
            report[f"{name}_accuracy"] = _accuracy_by_kind(pairs, pair_decisions(head, emb, k, q, 0.5))
            report[f"{name}_pairs"] = len(pairs)
    return head, report


def build_archive(
    tok,
    vocab_size: int,
    datasets: Mapping[str, Sequence[EditRequest]],
    cfg: SERACTrainConfig,
    *,
    seed: int,
    cf_model=None,
    corpus: Sequence[str] = (),
    device: str | torch.device = "cpu",
    source: str = "<memory>",
    embedding_cache_dir: str | Path | None = None,
) -> tuple[SeracArchive, dict[str, Any]]:
    """Train h (fine-tuning `cf_model`, or a new one pretrained on `corpus`) and g on `datasets`."""
    start = time.perf_counter()
    train, val, train_groups, val_groups = [], [], [], []
    for g, name in enumerate(datasets):
        tr, va = split_requests(datasets[name], cfg.val_fraction)
        train, val = train + tr, val + va
        train_groups, val_groups = train_groups + [g] * len(tr), val_groups + [g] * len(va)
    report: dict[str, Any] = {
        "n_train_edits": len(train),
        "n_val_edits": len(val),
        "datasets": {n: len(r) for n, r in datasets.items()},
    }
    if cf_model is None:
        cf_model, info = new_pretrained_cf(tok, vocab_size, corpus, cfg, seed=seed, device=device)
        report.update(info)
    examples = cf_examples(
        train,
        cfg.edit_template,
        out_of_scope_too=cfg.cf_out_of_scope,
        random_targets=cfg.cf_random_targets,
        seed=seed,
    )
    encs = cfm.encode_cf_examples(tok, examples)
    t0 = time.perf_counter()
    report["cf_losses"] = cfm.finetune_cf(
        cf_model,
        tok,
        encs,
        epochs=cfg.cf_epochs,
        lr=cfg.cf_lr,
        batch_size=cfg.cf_batch_size,
        seed=seed,
        device=device,
    )
    report.update({"cf_examples": len(encs), "cf_minutes": (time.perf_counter() - t0) / 60})
    for name, in_scope in (("in_scope", True), ("out_of_scope", False)):
        val_ex = [
            e for e in cf_examples(val, cfg.edit_template, out_of_scope_too=True) if e.in_scope == in_scope
        ]
        report[f"cf_val_{name}_acc"] = cfm.cf_token_accuracy(
            cf_model, tok, cfm.encode_cf_examples(tok, val_ex) if val_ex else [], device=device
        )
    t0 = time.perf_counter()
    head, report["classifier"] = train_classifier(
        train, train_groups, val, val_groups, cfg, seed=seed, embedding_cache_dir=embedding_cache_dir
    )
    report["classifier_minutes"] = (time.perf_counter() - t0) / 60
    report["total_minutes"] = (time.perf_counter() - start) / 60
    cf_model.eval()
    archive = SeracArchive(
        source=source,
        cf_model=cf_model,
        head=head,
        encoder_name=cfg.encoder,
        edit_template=cfg.edit_template,
        tokenizer_fingerprint=tokenizer_fingerprint(tok),
        info={"config": dataclasses.asdict(cfg), "seed": seed},
    )
    log.info(
        "SERAC archive trained in %.1f min: %s",
        report["total_minutes"],
        {k: v for k, v in report.items() if k.startswith("cf_val")},
    )
    return archive, report
