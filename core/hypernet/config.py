"""Strict frozen configs of the MEND editor network and of its meta-training (MEND §3, App. C).

`MENDNetConfig` holds what fixes the editor's shape and initial behaviour: which weights it edits
(`layers` x `inner_modules`), the gradient-transform MLP (`rank`, `n_hidden`, `combine`, `norm`,
`shared`) and the initial per-layer step `edit_lr`. Both the edit-time hparams
(`core.editors.mend.MENDHyperParams`) and the training config (`MENDTrainConfig`) extend it, so a
checkpoint can be checked field by field against the hparams it is loaded with. Field names follow
MEND's / EasyEdit's `hparams/TRAINING/MEND/*.yaml` where one exists (easyedit-notes §4, §6).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

EarlyStopKey = Literal["loss_total", "edit_acc"]
LocSource = Literal["dataset", "same_subject"]


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_float(name: str, value: object, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r} (write floats as 1.0e-4 in YAML)")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class MENDNetConfig:
    """The MEND editor network: edited weights, transform MLP, initial step size.

    `inner_modules`: module-name templates with a `{}` layer slot (EasyEdit's `inner_params` without
    ".weight"); `None` means the arch spec's MLP projections (gate when gated, in, out), so one file
    serves GPT-2 and LLaMA. `rank`: hidden rank of each low-rank layer, capped at the input width
    (`min(rank, d_in + d_out)` as MEND's `LRLinear`). `n_hidden`: hidden layers (MEND: 1, i.e. two
    layers). `combine`: one MLP on [u; delta] (MEND's default) instead of one per factor. `norm`:
    standardise u and delta with running statistics. `shared`: one MLP per weight shape with a per-layer
    scale/shift (MEND §3.1), else one MLP per edited weight. `edit_lr`: initial value of every learned
    per-layer step alpha_l.
    """

    layers: tuple[int, ...]
    inner_modules: tuple[str, ...] | None
    rank: int
    n_hidden: int
    combine: bool
    norm: bool
    shared: bool
    edit_lr: float

    def __post_init__(self) -> None:
        if not isinstance(self.layers, tuple) or not self.layers:
            raise ValueError(f"layers must be a non-empty tuple of ints, got {self.layers!r}")
        for x in self.layers:
            _check_int("each layer", x, 0)
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"layers repeat: {self.layers!r}")
        if self.inner_modules is not None:
            if not isinstance(self.inner_modules, tuple) or not self.inner_modules:
                raise ValueError(
                    f"inner_modules must be null or a non-empty list, got {self.inner_modules!r}"
                )
            for t in self.inner_modules:
                if not isinstance(t, str) or "{}" not in t:
                    raise ValueError(f"inner module template needs a '{{}}' layer slot, got {t!r}")
            if len(set(self.inner_modules)) != len(self.inner_modules):
                raise ValueError(f"inner_modules repeat: {self.inner_modules!r}")
        _check_int("rank", self.rank, 1)
        _check_int("n_hidden", self.n_hidden, 0)
        for name in ("combine", "norm", "shared"):
            _check_bool(name, getattr(self, name))
        _check_float("edit_lr", self.edit_lr, positive=True)

    def net_dict(self) -> dict[str, Any]:
        """The `MENDNetConfig` fields of this object (also of a subclass) as a plain dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(MENDNetConfig)}


def net_config(cfg: MENDNetConfig) -> MENDNetConfig:
    """The bare `MENDNetConfig` part of `cfg` (drops a subclass's extra fields)."""
    return MENDNetConfig(**cfg.net_dict())


@dataclass(frozen=True, kw_only=True)
class MENDTrainConfig(MENDNetConfig):
    """Meta-training of a MEND editor (MEND Alg. 1 / Eq. 4; EasyEdit `EditTrainer`, easyedit-notes §1).

    Per step: `batch_size` edits applied together, loss `c_edit * L_edit + c_loc * L_loc`; gradients of
    `accumulate` steps are summed before one Adam step (`lr` on the network, `lr_lr` on the alphas),
    after clipping their global norm to `grad_clip`. Every `val_every` steps (and at the end) the
    editor is validated on `val_size` examples; training stops after `max_steps` or when the
    `early_stop_key` value ("loss_total": lower is better; "edit_acc": higher is better) has not improved
    for `patience` steps. `edit_loss_on` picks the input of L_edit: "rephrase" (MEND's equivalence
    example x_e'), "prompt" (the edit input itself, EasyEdit's behaviour) or "both" (their mean).
    `loc_source` picks the locality input of requests: "dataset" (each request's own first probe, e.g.
    MEND's NQ question) or "same_subject" (another request about the same subject when there is one;
    `core.hypernet.examples`).
    """

    lr: float
    lr_lr: float
    c_edit: float
    c_loc: float
    edit_loss_on: Literal["rephrase", "prompt", "both"]
    loc_source: LocSource
    batch_size: int
    accumulate: int
    grad_clip: float
    max_steps: int
    val_every: int
    val_size: int
    early_stop_key: EarlyStopKey
    patience: int
    seed: int

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("lr", "grad_clip"):
            _check_float(name, getattr(self, name), positive=True)
        for name in ("lr_lr", "c_edit", "c_loc"):
            _check_float(name, getattr(self, name))
        if self.c_edit == 0 and self.c_loc == 0:
            raise ValueError("c_edit and c_loc are both 0: nothing to train")
        if self.edit_loss_on not in ("rephrase", "prompt", "both"):
            raise ValueError(f"edit_loss_on must be rephrase, prompt or both, got {self.edit_loss_on!r}")
        if self.loc_source not in ("dataset", "same_subject"):
            raise ValueError(f"loc_source must be dataset or same_subject, got {self.loc_source!r}")
        if self.early_stop_key not in ("loss_total", "edit_acc"):
            raise ValueError(f"early_stop_key must be loss_total or edit_acc, got {self.early_stop_key!r}")
        for name in ("batch_size", "accumulate", "max_steps", "val_every", "val_size", "patience"):
            _check_int(name, getattr(self, name), 1)
        _check_int("seed", self.seed, 0)
