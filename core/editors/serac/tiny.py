"""The in-code SERAC archive for the tiny random test models (`load_archive("tiny-<arch>")`).

Tests edit `core.models.tiny.build_tiny_model(arch)`, whose tokenizer is built in code, so their archive
is built in code too (as `world-<arch>-smoke` LMs are trained on demand), in a few seconds, memoised
with `functools.lru_cache` on its whole key (the architecture):
- h: a 2-layer GPT-2 over the tiny tokenizer, fine-tuned with `finetune_cf` to answer every prompt of
  `TINY_TEXTS` (a sentence minus its last word) with the target named in the edit context, for every
  target word of the tiny vocabulary: the copy behaviour SERAC's h must have for in-scope inputs;
- g: an UNTRAINED head with all weights zero, so every key and query embed to the same point and
  g = exp(0) = 1 for every pair: every row is in scope and ties go to the newest edit
  (`core.memory.edit_memory`). This makes the contract suite's checks meaningful for a memory-based
  editor (the newest edit changes the outputs of any probe), while the trained classifier is tested on
  the world data. Encoder: the dependency-free "hashing-bow-64".
"""

from __future__ import annotations

import functools

import torch

from core.editors.serac import cf_model as cfm
from core.editors.serac.archive import SeracArchive, tokenizer_fingerprint
from core.editors.serac.classifier import ScopeHead
from core.editors.serac.data import CFExample
from core.models.configs import ModelSize
from core.models.tiny import TINY_TEXTS, build_tiny_tokenizer

TINY_CF_SIZE = ModelSize(n_layers=2, hidden=64, n_heads=4, max_positions=256)
TINY_ENCODER = "hashing-bow-64"
TINY_TEMPLATE = "{prompt} {target}"


def tiny_prompts_and_targets() -> tuple[list[str], list[str]]:
    """The prompts (each tiny sentence minus its last word) and the distinct last words (targets)."""
    prompts, targets = [], []
    for text in TINY_TEXTS:
        prompt, last = text.rstrip(".").rsplit(" ", 1)
        prompts.append(prompt)
        targets.append(last)
    return prompts, sorted(set(targets))


@functools.lru_cache(maxsize=4)
def build_tiny_archive(arch: str, epochs: int = 12, seed: int = 0) -> SeracArchive:
    """The tiny archive for `build_tiny_model(arch)` (see the module docstring)."""
    tok = build_tiny_tokenizer(arch)
    prompts, targets = tiny_prompts_and_targets()
    examples = [
        CFExample(TINY_TEMPLATE.format(prompt=p, target=t), p, t, True) for p in prompts for t in targets
    ]
    with torch.random.fork_rng():
        cf = cfm.make_cf_model(tok, len(tok), TINY_CF_SIZE, seed)
        encs = cfm.encode_cf_examples(tok, examples)
        losses = cfm.finetune_cf(cf, tok, encs, epochs=epochs, lr=3e-3, batch_size=32, seed=seed)
    head = ScopeHead(64, 8, 8)
    with torch.no_grad():
        for p in head.parameters():
            p.zero_()
    head.eval()
    return SeracArchive(
        source=f"tiny-{arch}",
        cf_model=cf.eval(),
        head=head,
        encoder_name=TINY_ENCODER,
        edit_template=TINY_TEMPLATE,
        tokenizer_fingerprint=tokenizer_fingerprint(tok),
        info={"cf_losses": losses, "cf_accuracy": cfm.cf_token_accuracy(cf, tok, encs)},
    )
