"""Settings of world-LM pretraining and the named profiles (`smoke`, `default`) per architecture.

`pretrain_profile(world_profile, arch)` is the one visible place for the defaults; overrides are
`dataclasses.replace` diffs. Profile budgets: `smoke` trains in well under 60 s, `default` each
model in <= 10 minutes on 2 CPU threads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.models.arch import ARCHS, get_arch
from core.models.configs import ModelSize
from core.models.training import TrainSettings


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    """One world-LM pretraining run: architecture, sizes, tokenizer, optimiser and stop rule.

    Training stops at the first recall check (every `train.eval_every` steps, on `recall_sample`
    probes of each kind in `recall_kinds`) where every checked kind reaches `recall_target`, or
    when the epochs or the time budget end. Stopping soon after the target is met avoids the
    overtraining that costs held-out (recombined-frame) recall.
    """

    arch: str
    size: ModelSize
    train: TrainSettings
    vocab_size: int = 2048
    recall_target: float = 0.99
    recall_kinds: tuple[str, ...] = ("trained",)
    recall_sample: int = 600
    recall_batch_size: int = 128
    n_threads: int = 2

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; supported: {sorted(ARCHS)}")
        if not 0.0 < self.recall_target <= 1.0:
            raise ValueError(f"recall_target {self.recall_target} not in (0, 1]")


_GPT_SMALL = ModelSize(n_layers=4, hidden=128, n_heads=4, max_positions=512)
_GATED_SMALL = ModelSize(n_layers=4, hidden=128, n_heads=4, intermediate=512, max_positions=512,
                         tie_embeddings=False)  # untied like LLaMA; tied gated models train ~5x slower on CPU
_SMOKE_SIZE = ModelSize(n_layers=2, hidden=64, n_heads=4, max_positions=512)
_SMOKE_GATED = ModelSize(n_layers=2, hidden=64, n_heads=4, intermediate=256, max_positions=512,
                         tie_embeddings=False)

# lr 3e-3 over 6 planned epochs (3654 steps) reached the 0.99 trained-recall stop at 2500-2750 steps
# on the default world (2026-11-23); lr 2e-3 over 8 epochs needed 3000 steps for 0.98.
_DEFAULT_TRAIN = TrainSettings(lr=3e-3, warmup_steps=200, batch_size=64, epochs=6, time_budget_s=570.0,
                               eval_every=250, log_every=50)
_SMOKE_TRAIN = TrainSettings(lr=5e-3, warmup_steps=30, batch_size=32, epochs=25, time_budget_s=40.0,
                             eval_every=50, log_every=25)


def pretrain_profile(world_profile: str, arch: str, *, seed: int = 0) -> PretrainConfig:
    """The pretraining settings for `arch` on the world built with `world_profile`."""
    gated = get_arch(arch).mlp_gate is not None
    if world_profile == "smoke":
        return PretrainConfig(
            arch=arch, size=_SMOKE_GATED if gated else _SMOKE_SIZE, vocab_size=512,
            train=replace(_SMOKE_TRAIN, seed=seed), recall_target=0.95, recall_sample=200,
        )
    if world_profile == "default":
        return PretrainConfig(
            arch=arch, size=_GATED_SMALL if gated else _GPT_SMALL, vocab_size=2048,
            train=replace(_DEFAULT_TRAIN, seed=seed),
        )
    raise ValueError(f"no pretraining profile for world profile {world_profile!r}; known: ['default', 'smoke']")

