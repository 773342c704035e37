"""The trained SERAC archive: counterfactual LM + scope-classifier head, saved, checked and loaded.

A folder written by `python -m core.editors.serac_train` (assembled next to its destination and renamed
into place, so a failed run never leaves half an archive; MEND-style: no base-model weights inside):

    serac.json         encoder name, head sizes, edit template, tokenizer fingerprint, vocab size
    classifier.pt      state dict of the `ScopeHead` (tensors only; loaded with weights_only=True)
    cf/                the counterfactual model h (a small GPT-2) and a copy of its training tokenizer
    train_report.json  data sizes, losses, validation accuracy of both parts
    manifest.json      the training config, package versions (git revision and timings: the run log)

The counterfactual model reads the base model's token ids, so an archive only fits base models whose
tokenizer has the same fingerprint (vocabulary, merges, special tokens, pre/post-processing); a mismatch
fails with a message naming both fingerprints. `load_archive("tiny-<arch>")` builds in code the archive
for the tiny random test models of `core.models.tiny` (see `core.editors.serac.tiny`). Loaded folders
are memoised with `functools.lru_cache` on their whole key (resolved path and mtime of serac.json).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from core.editors.serac.classifier import ScopeHead
from core.io import atomic_folder, write_json, write_manifest
from core.models.tokenizer import save_tokenizer

log = logging.getLogger(__name__)

META_FILE = "serac.json"
HEAD_FILE = "classifier.pt"
CF_DIR = "cf"
_TINY = re.compile(r"^tiny-(?P<arch>[a-z0-9]+)$")


class ArchiveMismatchError(ValueError):
    """The archive was trained for another tokenizer or vocabulary than the model's."""


def _tokenizer_json(tok) -> dict[str, Any]:
    return json.loads(tok.backend_tokenizer.to_str())


def vocab_fingerprint(tok) -> str:
    """Hash of the vocabulary and merges (plus added tokens): equal ids mean equal token strings."""
    d = _tokenizer_json(tok)
    return _hash({"model": d.get("model"), "added_tokens": d.get("added_tokens")})


def tokenizer_fingerprint(tok) -> str:
    """Hash of everything that decides token ids: vocabulary, merges, added tokens, normaliser,
    pre-tokenizer, post-processor (BOS policy), decoder and the bos/eos/pad ids (not padding side)."""
    d = _tokenizer_json(tok)
    keys = ("model", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder")
    return _hash(
        {**{k: d.get(k) for k in keys}, "special_ids": [tok.bos_token_id, tok.eos_token_id, tok.pad_token_id]}
    )


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def context_ids(tok, text: str) -> tuple[int, ...]:
    """The tokens that condition the counterfactual model: the edit text (BOS first if the tokenizer
    adds one) followed by EOS as the separator from the query."""
    if tok.eos_token_id is None:
        raise ValueError("SERAC needs a tokenizer with an eos token (the edit / query separator)")
    return (*tok(text)["input_ids"], int(tok.eos_token_id))


@dataclass(frozen=True, eq=False)
class SeracArchive:
    """A loaded archive: the two trained parts of SERAC and how they were trained."""

    source: str
    cf_model: PreTrainedModel
    head: ScopeHead
    encoder_name: str
    edit_template: str  # z_e as text, with {prompt} and {target}
    tokenizer_fingerprint: str
    info: Mapping[str, Any] = field(default_factory=dict)

    def check_tokenizer(self, tok) -> None:
        """Raise `ArchiveMismatchError` unless `tok` has the fingerprint the archive was trained with."""
        fp = tokenizer_fingerprint(tok)
        if fp != self.tokenizer_fingerprint:
            raise ArchiveMismatchError(
                f"SERAC archive {self.source} was trained for tokenizer {self.tokenizer_fingerprint}, "
                f"but the model's tokenizer is {fp}: train an archive for this model "
                "(python -m core.editors.serac_train --model <model> ...)"
            )

    def edit_text(self, prompt: str, target: str) -> str:
        return self.edit_template.format(prompt=prompt, target=target)


def save_archive(
    out_dir: str | Path, archive: SeracArchive, tok, report: Mapping[str, Any], config: Mapping[str, Any]
) -> Path:
    """Write `archive` (see the module docstring) into `out_dir`, replacing it atomically."""
    with atomic_folder(out_dir) as tmp:
        archive.cf_model.save_pretrained(tmp / CF_DIR, safe_serialization=True)
        save_tokenizer(tok, tmp / CF_DIR)
        torch.save({k: v.detach().cpu() for k, v in archive.head.state_dict().items()}, tmp / HEAD_FILE)
        write_json(
            tmp / META_FILE,
            {
                **dict(archive.info),
                "encoder": archive.encoder_name,
                "head": {
                    "in_dim": archive.head.in_dim,
                    "hidden": archive.head.hidden,
                    "out_dim": archive.head.out_dim,
                },
                "edit_template": archive.edit_template,
                "tokenizer_fingerprint": archive.tokenizer_fingerprint,
                "vocab_fingerprint": vocab_fingerprint(tok),
                "vocab_size": int(archive.cf_model.config.vocab_size),
            },
        )
        write_json(tmp / "train_report.json", dict(report))
        write_manifest(tmp, dict(config), stable=True)
    return Path(out_dir)


def load_archive(spec: str) -> SeracArchive:
    """The archive in folder `spec`, or the in-code tiny archive for `spec = "tiny-<arch>"`."""
    m = _TINY.match(spec)
    if m:
        from core.editors.serac.tiny import build_tiny_archive

        return build_tiny_archive(m["arch"])
    path = Path(spec)
    meta = path / META_FILE
    if not meta.is_file():
        raise FileNotFoundError(
            f"{meta} does not exist: train the SERAC archive first (python -m core.editors.serac_train "
            f"--model <model> --data-root <world> --config <training yaml> --out {spec})"
        )
    return _load_folder(str(path.resolve()), meta.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_folder(path: str, mtime_ns: int) -> SeracArchive:
    """Load an archive folder (memoised on its whole key: the path and serac.json's mtime)."""
    folder = Path(path)
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    try:
        head = ScopeHead(**meta["head"])
        head.load_state_dict(torch.load(folder / HEAD_FILE, weights_only=True))
        cf = AutoModelForCausalLM.from_pretrained(folder / CF_DIR)
        fields = {
            "encoder_name": meta["encoder"],
            "edit_template": meta["edit_template"],
            "tokenizer_fingerprint": meta["tokenizer_fingerprint"],
        }
    except (KeyError, RuntimeError, OSError) as e:
        raise ValueError(f"{folder}: not a valid SERAC archive: {e}") from e
    head.eval()
    cf.eval()
    log.info("loaded SERAC archive %s (encoder %s)", folder, meta["encoder"])
    return SeracArchive(source=str(folder), cf_model=cf, head=head, info=meta, **fields)
