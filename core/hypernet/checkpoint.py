"""MEND editor checkpoints: the editor only, never base-model weights (house style 4.6; MEND's archives).

A checkpoint is one `torch.save` file holding plain data (loadable with `weights_only=True`):

    format       "palimpsest-mend-editor/1"
    net_config   the `MENDNetConfig` fields the editor was built from
    fingerprint  [[param, d_out, d_in, conv1d], ...]: the base model's edited weights, in alpha order
    state_dict   the editor's parameters (MLPs, alphas) and buffers (running statistics)
    info         free-form JSON-able training facts (model spec, step, validation metrics)

`load_editor` rebuilds the editor for a given model and refuses, naming file and field, a checkpoint
whose fingerprint does not match the model's weights (another model, layer set or width) or whose
network config differs from the caller's. Writes go through a temporary file and an atomic rename.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.hypernet.config import MENDNetConfig, net_config
from core.hypernet.mend import MENDEditor, fingerprint, resolve_edited_weights
from core.io import atomic_torch_save

FORMAT = "palimpsest-mend-editor/1"


class CheckpointMismatchError(ValueError):
    """A MEND checkpoint does not fit the model or the hparams it is loaded with."""


def save_editor(editor: MENDEditor, path: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Atomically write `editor` (state, network config, fingerprint, `info`) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": FORMAT,
        "net_config": {k: list(v) if isinstance(v, tuple) else v for k, v in editor.cfg.net_dict().items()},
        "fingerprint": fingerprint(editor.weights),
        "state_dict": {k: v.detach().cpu().clone() for k, v in editor.state_dict().items()},
        "info": dict(info or {}),
    }
    atomic_torch_save(blob, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict at `path`, with its format checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"MEND checkpoint {path} does not exist (train one with `python -m core.hypernet.train`)"
        )
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointMismatchError(f"{path}: not a MEND editor checkpoint (format {FORMAT!r} expected)")
    return blob


def checkpoint_net_config(blob: dict[str, Any], source: str = "<checkpoint>") -> MENDNetConfig:
    """The `MENDNetConfig` stored in a checkpoint dict."""
    raw = {k: tuple(v) if isinstance(v, list) else v for k, v in blob["net_config"].items()}
    try:
        return MENDNetConfig(**raw)
    except (TypeError, ValueError) as e:
        raise CheckpointMismatchError(f"{source}: bad net_config: {e}") from e


def load_editor(path: str | Path, model: nn.Module, cfg: MENDNetConfig | None = None) -> MENDEditor:
    """The editor stored at `path`, built for `model` and in eval mode.

    Raises `CheckpointMismatchError` when the stored fingerprint differs from `model`'s edited weights,
    or when `cfg` (e.g. the edit hparams) is given and its `MENDNetConfig` fields differ from the stored ones.
    """
    blob = read_checkpoint(path)
    stored = checkpoint_net_config(blob, str(path))
    if cfg is not None:
        diff = {
            k: (v, getattr(stored, k))
            for k, v in net_config(cfg).net_dict().items()
            if getattr(stored, k) != v
        }
        if diff:
            detail = ", ".join(f"{k}: hparams {a!r} vs checkpoint {b!r}" for k, (a, b) in diff.items())
            raise CheckpointMismatchError(f"{path}: editor config differs from the hparams ({detail})")
    weights = resolve_edited_weights(model, stored)
    expected = fingerprint(weights)
    if blob["fingerprint"] != expected:
        trained = {row[0]: row[1:] for row in blob["fingerprint"]}
        here = {row[0]: row[1:] for row in expected}
        missing = sorted(set(trained) - set(here))
        extra = sorted(set(here) - set(trained))
        shapes = sorted(n for n in set(trained) & set(here) if trained[n] != here[n])
        order = "" if missing or extra or shapes else " (same weights, another order)"
        raise CheckpointMismatchError(
            f"{path}: the editor was trained for other weights than this model's "
            f"({model.config.model_type}, {getattr(model.config, '_name_or_path', '') or 'unnamed'}): "
            f"only in checkpoint {missing[:6]}, only in model {extra[:6]}, "
            f"[d_out, d_in, conv1d] differ for {[(n, trained[n], here[n]) for n in shapes[:6]]}{order}"
        )
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten; keep the global RNG as it was
        editor = MENDEditor(stored, weights)
    editor.load_state_dict(blob["state_dict"], strict=True)
    return editor.eval()
