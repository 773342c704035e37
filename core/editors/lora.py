"""LoRA and AdaLoRA editing: low-rank adapters swapped into the model in place, trained with the FT-M loss.

AdaLoRA (Zhang et al. 2023, "Adaptive Budget Allocation for Parameter-Efficient Fine-Tuning", SVD form
P diag(E) Q with orthogonality regulariser and importance-based rank budget) is the "AdaLoRA" column of
KnowEdit Table 4 (Zhang et al. 2024, §4.1); LoRA (Hu et al. 2022) is EasyEdit's `lora_type: lora`. Both
follow EasyEdit `models/lora/lora_main.py` (easyedit-notes §4): adapters on the attention projections
(`q_proj`/`v_proj` for LLaMA, `c_attn` for GPT-2), Adam(lr, weight_decay) for `num_steps` epochs over the
requests in chunks of `batch_size`, and since the Nov-2024 KnowEdit update (peers.md §1.2, issue #427) the
FT-M objective: masked cross-entropy on the target tokens of `prompt + " " + target`
(`core.editors.ft.target_new_loss`). AdaLoRA adds peft's orthogonal regulariser
`orth_reg_weight * mean ||P P^T - I||_F` to the loss, as `AdaLoraModel.forward` does for EasyEdit's `.loss`.

The adapters come from `peft` (tuner classes applied to the existing module tree), so the model object
the evaluator holds computes the edited function. `Undo` puts the original module objects back, deletes
what peft added to the model (`peft_config`) and restores every `requires_grad` flag: afterwards the
module tree and every parameter are identical to before. A second `edit` on a model that already carries
the adapters keeps training them (EasyEdit's sequential mode); its `Undo` restores the adapter weights.
Differences from EasyEdit: EasyEdit never calls `update_and_allocate`, so its AdaLoRA keeps `init_r`
ranks throughout; here `rank_allocation: true` runs the AdaLoRA budget schedule (init_r -> target_r over
tinit/tfinal/deltaT), and `false` reproduces EasyEdit. The edit runs in eval mode (as EasyEdit's
`from_pretrained` model), so `lora_dropout` has no effect; adapter init is seeded by `seed` under a
forked RNG; no gradient checkpointing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from peft import AdaLoraConfig, AdaLoraModel, LoraConfig, LoraModel
from peft.tuners.adalora.layer import RankAllocator
from torch import nn

from core.editors.base import Undo, encode_prompt_target, forward_logits, model_device
from core.editors.ft import _check_number, target_new_loss
from core.models.arch import get_arch, is_conv1d
from core.types import EditRequest

log = logging.getLogger(__name__)

ADAPTER = "palimpsest_edit"  # peft adapter name; appears in the adapter parameter names


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class LoRAHyperParams:
    """LoRA edit: rank-`rank` adapters with scaling lora_alpha / rank on `target_modules` at `layers`.

    `target_modules` are module-name templates with a `{}` layer slot; `layers=()` means every layer.
    """

    layers: tuple[int, ...]
    target_modules: tuple[str, ...]
    rank: int
    lora_alpha: float
    lora_dropout: float
    lr: float
    num_steps: int
    weight_decay: float
    batch_size: int
    seed: int

    def __post_init__(self) -> None:
        if not isinstance(self.layers, tuple) or any(
            isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in self.layers
        ):
            raise ValueError(f"layers must be a tuple of non-negative ints, got {self.layers!r}")
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"layers repeat: {self.layers!r}")
        if not isinstance(self.target_modules, tuple) or not self.target_modules:
            raise ValueError(
                f"target_modules must be a non-empty tuple of templates, got {self.target_modules!r}"
            )
        for t in self.target_modules:
            if not isinstance(t, str) or "{}" not in t:
                raise ValueError(f"target module template needs a '{{}}' layer slot, got {t!r}")
        _check_number("lora_alpha", self.lora_alpha, positive=True)
        _check_number("lr", self.lr, positive=True)
        _check_number("weight_decay", self.weight_decay)
        _check_number("lora_dropout", self.lora_dropout)
        if self.lora_dropout >= 1:
            raise ValueError(f"lora_dropout must be < 1, got {self.lora_dropout!r}")
        for name in ("num_steps", "batch_size"):
            _check_int(name, getattr(self, name), 1)
        _check_int("seed", self.seed, 0)
        self._check_rank()

    def _check_rank(self) -> None:
        _check_int("rank", self.rank, 1)


@dataclass(frozen=True, kw_only=True)
class AdaLoRAHyperParams(LoRAHyperParams):
    """AdaLoRA edit: SVD adapters of initial rank `init_r`, budget `target_r` on average (peft AdaLoraConfig).

    `rank` is peft's ignored `r` (EasyEdit sets it; AdaLoRA uses `init_r`) and must equal `target_r` here.
    `total_step=None` means `num_steps * number of batches` of the call. `rank_allocation=false` never prunes
    ranks (EasyEdit's behaviour).
    """

    init_r: int
    target_r: int
    tinit: int
    tfinal: int
    deltaT: int  # noqa: N815 - peft's and the AdaLoRA paper's name
    beta1: float
    beta2: float
    orth_reg_weight: float
    total_step: int | None
    rank_allocation: bool

    def _check_rank(self) -> None:
        for name in ("init_r", "target_r", "deltaT"):
            _check_int(name, getattr(self, name), 1)
        for name in ("tinit", "tfinal"):
            _check_int(name, getattr(self, name), 0)
        if self.target_r > self.init_r:
            raise ValueError(f"target_r ({self.target_r}) must be <= init_r ({self.init_r})")
        if self.rank != self.target_r:
            raise ValueError(
                f"AdaLoRA ignores rank; set it equal to target_r ({self.target_r}), got {self.rank}"
            )
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            _check_number(name, value, positive=True)
            if value >= 1:
                raise ValueError(f"{name} must be in (0, 1), got {value!r}")
        _check_number("orth_reg_weight", self.orth_reg_weight)
        if self.total_step is not None:
            _check_int("total_step", self.total_step, 1)
        if not isinstance(self.rank_allocation, bool):
            raise ValueError(f"rank_allocation must be true or false, got {self.rank_allocation!r}")


def lora_target_names(model: nn.Module, hp: LoRAHyperParams) -> list[str]:
    """Full names of the modules that get adapters: each template at each layer (all layers if none)."""
    layers = hp.layers or tuple(range(get_arch(model).n_layers(model.config)))
    modules = dict(model.named_modules())
    names = [t.format(layer) for layer in layers for t in hp.target_modules]
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"model ({model.config.model_type}) has no module(s) {missing}")
    return names


def _peft_config(model: nn.Module, names: list[str], hp: LoRAHyperParams, total_step: int):
    fan_in_fan_out = any(is_conv1d(model.get_submodule(n)) for n in names)  # GPT-2 Conv1D stores W^T
    common = dict(
        target_modules=list(names), lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout,
        fan_in_fan_out=fan_in_fan_out, bias="none", inference_mode=False,
    )  # fmt: skip
    if isinstance(hp, AdaLoRAHyperParams):
        return AdaLoraConfig(
            init_r=hp.init_r, target_r=hp.target_r, tinit=hp.tinit, tfinal=hp.tfinal, deltaT=hp.deltaT,
            beta1=hp.beta1, beta2=hp.beta2, orth_reg_weight=hp.orth_reg_weight, total_step=total_step, **common,
        )  # fmt: skip
    return LoraConfig(r=hp.rank, **common)


def _install(model: nn.Module, names: list[str], hp: LoRAHyperParams, total_step: int) -> Undo:
    """Swap adapter-wrapped modules in (seeded init); the returned `Undo` swaps the originals back."""
    originals = {n: model.get_submodule(n) for n in names}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    attrs = set(vars(model))
    config = _peft_config(model, names, hp, total_step)
    tuner_cls = AdaLoraModel if isinstance(hp, AdaLoRAHyperParams) else LoraModel
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(hp.seed)
        tuner_cls(model, config, ADAPTER)  # injects in place; the tuner object itself is not kept

    def restore() -> None:
        for name, module in originals.items():
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, module)
        for key in set(vars(model)) - attrs:
            delattr(model, key)
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])

    return Undo(restore, f"remove {type(config).__name__} adapters from {len(names)} module(s)")


def _snapshot_adapter(model: nn.Module) -> Undo:
    """Undo for a continued edit: copy the adapter tensors (and AdaLoRA's rank pattern) back."""
    saved = {n: p.detach().clone() for n, p in model.named_parameters() if ADAPTER in n}
    config = model.peft_config[ADAPTER]
    pattern = dict(config.rank_pattern) if getattr(config, "rank_pattern", None) else None

    def restore() -> None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for n, t in saved.items():
                params[n].copy_(t)
        if hasattr(config, "rank_pattern"):
            config.rank_pattern = pattern

    return Undo(restore, f"restore {len(saved)} adapter tensor(s)")


def orthogonal_regularizer(model: nn.Module) -> torch.Tensor:
    """peft AdaLoraModel.forward's regulariser: mean over P (lora_A) and Q (lora_B) of ||P P^T - I||_F."""
    terms = []
    for n, p in model.named_parameters():
        if ADAPTER in n and ("lora_A" in n or "lora_B" in n):
            cov = p @ p.T if "lora_A" in n else p.T @ p
            terms.append(torch.linalg.matrix_norm(cov - torch.eye(cov.shape[0], dtype=cov.dtype), ord="fro"))
    return torch.stack(terms).mean()


def _allocate(allocator: RankAllocator, model: nn.Module, config: AdaLoraConfig, step: int) -> None:
    """AdaLoraModel.update_and_allocate: importance-based budget, then the final mask after total - tfinal."""
    last = config.total_step - config.tfinal
    if step < last:
        _, pattern = allocator.update_and_allocate(model, step)
        if pattern:
            config.rank_pattern = pattern
    elif step == last:
        _, pattern = allocator.update_and_allocate(model, step, force_mask=True)
        config.rank_pattern = pattern
        allocator.reset_ipt()
    else:
        allocator.mask_using_rank_pattern(model, config.rank_pattern)


def apply_lora(model: nn.Module, tok, requests: Sequence[EditRequest], hp: LoRAHyperParams) -> Undo:
    """Train LoRA/AdaLoRA adapters in place on `requests` (FT-M loss); `Undo` restores the model exactly.

    Invariant: only adapter tensors train; base weights are never written. On an exception the model is
    restored first.
    """
    if not requests:
        raise ValueError("no requests to edit")
    names = lora_target_names(model, hp)
    device = model_device(model)
    chunks = [requests[i : i + hp.batch_size] for i in range(0, len(requests), hp.batch_size)]
    batches = [
        encode_prompt_target(tok, [r.prompt for r in c], [r.target_new for r in c], device) for c in chunks
    ]
    total_step = hp.num_steps * len(chunks)
    adalora = isinstance(hp, AdaLoRAHyperParams)
    if adalora and hp.total_step is not None:
        total_step = hp.total_step
    flags = {p: p.requires_grad for p in model.parameters()}  # by object: peft renames wrapped weights
    installed = getattr(model, "peft_config", {})
    if ADAPTER in installed:
        if sorted(installed[ADAPTER].target_modules) != sorted(names):
            raise ValueError("the model carries adapters on other modules; undo that edit first")
        undo = _snapshot_adapter(model)
    else:
        undo = _install(model, names, hp, total_step)
    was_training = model.training
    try:
        model.eval()
        params = []
        for n, p in model.named_parameters():
            p.requires_grad_(ADAPTER in n and "ranknum" not in n)
            if p.requires_grad:
                params.append(p)
        config = model.peft_config[ADAPTER]
        allocator = RankAllocator(model, config, ADAPTER) if adalora and hp.rank_allocation else None
        opt = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        step = 0
        with torch.enable_grad():
            for epoch in range(hp.num_steps):
                total = 0.0
                for chunk, batch in zip(chunks, batches, strict=True):
                    opt.zero_grad(set_to_none=True)
                    loss = target_new_loss(forward_logits(model, batch), batch)
                    total += loss.item() * len(chunk)
                    if adalora and hp.orth_reg_weight > 0:
                        loss = loss + hp.orth_reg_weight * orthogonal_regularizer(model)
                    loss.backward()
                    opt.step()
                    if allocator is not None:
                        _allocate(allocator, model, config, step)
                    step += 1
                log.debug("LoRA epoch %d: mean FT-M loss %.4g", epoch, total / len(requests))
            opt.zero_grad(set_to_none=True)
    except BaseException:
        undo()
        raise
    finally:
        model.train(was_training)
        for p in model.parameters():
            p.requires_grad_(flags.get(p, False))  # adapter tensors stay frozen between edits
    return undo


def apply_adalora(model: nn.Module, tok, requests: Sequence[EditRequest], hp: AdaLoRAHyperParams) -> Undo:
    """AdaLoRA: `apply_lora` with AdaLoRA hparams (checked, so a LoRA file cannot run under this key)."""
    if not isinstance(hp, AdaLoRAHyperParams):
        raise TypeError(f"AdaLoRA needs AdaLoRAHyperParams, got {type(hp).__name__}")
    return apply_lora(model, tok, requests, hp)
