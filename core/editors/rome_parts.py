"""Shared locate-then-edit steps of ROME and MEMIT: context templates, keys, the target-vector optimisation.

- `context_prefixes`: ROME §3 averages keys and losses over short random prefixes ("{}" plus texts
  sampled from the model). EasyEdit samples with `generate_fast` and caches them in one global, whichever
  model asks next; we sample top-5 with fixed per-prefix seeds (`core.eval.scoring.sample_generate`)
  and cache them per model object (weakly) and per (tokenizer, count, length, seed): like the reference,
  they are sampled once, from the model as first seen, and later edits (sequential or after a restore)
  reuse them instead of paying `count` generation passes per edit call; two models never share them.
- `compute_keys`: the input k of the edited projection at the subject's last token (`fact_token:
  subject_last`) or the prompt's last token (`last`), one row per text (ROME Eq. 3 before averaging).
- `optimise_delta`: ROME §3 "computing v*" / MEMIT Eq. 16-17 (compute_z). A vector delta is added to
  the output of `edit_module` at the lookup token of every row and optimised with Adam on
      L(delta) = mean_rows NLL(target | prefix + prompt) + kl_factor * KL(P_orig || P_delta)["{s} is a"]
                 + v_weight_decay * ||delta|| / ||v_init||^2,
  stopping below `early_stop_loss`, with ||delta|| clamped to clamp_norm_factor * ||v_init|| (the weight
  decay uses ||delta||, not its square, as in the reference `compute_v.py`, whose defaults assume it).
  Speed: the hidden states entering block `layer` cannot change, so they are computed ONCE; each step
  runs only blocks >= layer, all rows in one batch, only the columns from the first lookup token on
  (earlier columns' keys/values are kept: `partial.freeze_prefix`; with context templates that skips
  the template text), and the LM head only at the positions that are scored (target tokens and the KL
  token) instead of over the whole sequence (`core.editors.partial`, shared with FT).
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from core.editors.base import train_only
from core.editors.partial import (
    ScoredBatch,
    decoder_blocks,
    freeze_prefix,
    pad_rows,
    scored_logprobs,
    weighted_nll,
)
from core.eval.scoring import encode_answer, sample_generate
from core.hooks import add_at_positions, capture_input, capture_output, run_until
from core.models.inputs import position_ids_from_mask
from core.stats import cached_layer_cov, layer_cov_file, load_or_compute_cov
from core.types import EditRequest

log = logging.getLogger(__name__)
PREFIX_STARTS = ("The", "Therefore", "Because", "I", "You")  # ROME / EasyEdit generation prefixes


@dataclass(frozen=True)
class DeltaSettings:
    """The v*/z optimisation settings shared by ROME and MEMIT hparams."""

    v_num_grad_steps: int
    v_lr: float
    v_weight_decay: float
    clamp_norm_factor: float
    kl_factor: float
    early_stop_loss: float
    fact_token: str


_PREFIX_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple[str, ...]]] = weakref.WeakKeyDictionary()


def context_prefixes(model: nn.Module, tok, count: int, length: int, seed: int = 0) -> list[str]:
    """[""] + `count` prefixes "<sampled text>. ", sampled top-5 from the model, `length` tokens each.

    Sampled on the first call for this model object and key, then served from the cache (module docstring).
    """
    if count == 0:
        return [""]
    per_model = _PREFIX_CACHE.setdefault(model, {})
    key = (tok.name_or_path, len(tok), count, length, seed)
    if key not in per_model:
        per_model[key] = tuple(_sample_prefixes(model, tok, count, length, seed))
    return list(per_model[key])


def _sample_prefixes(model: nn.Module, tok, count: int, length: int, seed: int) -> list[str]:
    starts = [PREFIX_STARTS[i % len(PREFIX_STARTS)] for i in range(count)]
    gens = sample_generate(
        model, tok, starts, seeds=[seed * 1000 + i for i in range(count)], max_length=length
    )
    texts = [(s + g.text).replace("\n", " ").strip() for s, g in zip(starts, gens, strict=True)]
    return ["", *[t + ". " for t in texts]]


def subject_span(request: EditRequest) -> tuple[int, int]:
    """Character span [start, end) of the request's subject in its prompt; ValueError when absent."""
    if not request.subject or request.subject not in request.prompt:
        raise ValueError(
            f"case {request.case_id!r}: subject {request.subject!r} does not occur in prompt {request.prompt!r}; "
            "ROME/MEMIT edit at the subject's last token"
        )
    start = request.prompt.index(request.subject)
    return start, start + len(request.subject)


def _token_at(tok, text: str, char: int) -> tuple[list[int], int]:
    """(ids of `text`, index of the non-special token covering character `char`)."""
    enc = tok(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    for i, ((a, b), special) in enumerate(
        zip(enc["offset_mapping"], enc["special_tokens_mask"], strict=True)
    ):
        if not special and a <= char < b:
            return list(enc["input_ids"]), i
    raise ValueError(f"no token covers character {char} of {text!r}")


def lookup_char(request: EditRequest, prefix: str, fact_token: str, prompt: str | None = None) -> int:
    """The character of `prefix + prompt` whose token is the lookup token."""
    prompt = request.prompt if prompt is None else prompt
    if fact_token == "last":
        return len(prefix) + len(prompt.rstrip()) - 1
    return len(prefix) + subject_span(request)[1] - 1


def compute_keys(
    model: nn.Module,
    tok,
    module_name: str,
    requests: Sequence[EditRequest],
    prefixes: Sequence[str],
    fact_token: str,
    *,
    output: bool = False,
) -> torch.Tensor:
    """Keys (n_requests, len(prefixes), d_in): input of `module_name` at the lookup token of prefix + prompt.

    With `output=True`, the module's output (d_out) instead (MEMIT's current z at the top layer).
    """
    device = next(model.parameters()).device
    rows, idx = [], []
    for r in requests:
        for p in prefixes:
            ids, i = _token_at(tok, p + r.prompt, lookup_char(r, p, fact_token))
            rows.append(ids)
            idx.append(i)
    ids, mask, shifts = pad_rows(rows, tok, device)
    capture = capture_output if output else capture_input
    with torch.no_grad(), capture(model.get_submodule(module_name), stop=True) as box:
        run_until(
            lambda: model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask))
        )
    cols = torch.tensor([i + s for i, s in zip(idx, shifts, strict=True)], device=device)
    keys = box.value[torch.arange(len(rows), device=device), cols]  # (n * P, d_in)
    return keys.reshape(len(requests), len(prefixes), -1)


def optimise_delta(
    model: nn.Module,
    tok,
    request: EditRequest,
    prefixes: Sequence[str],
    *,
    layer: int,
    edit_module: str,
    settings: DeltaSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(delta (d,), v_init (d,)): the optimised vector added to `edit_module`'s output at the lookup token,
    and that output at the lookup token of the plain prompt before the edit (ROME's `target_init`)."""
    device = next(model.parameters()).device
    module = model.get_submodule(edit_module)
    rows, look, tgt = [], [], []  # token ids, lookup index, (first, end) target token span
    for p in prefixes:
        enc = encode_answer(tok, p + request.prompt, request.target_new)
        ids, i = _token_at(
            tok, p + request.prompt + " " + request.target_new, lookup_char(request, p, settings.fact_token)
        )
        if list(enc.input_ids) != ids:
            raise RuntimeError("tokenizations disagree")
        rows.append(ids)
        look.append(i)
        tgt.append((enc.start, enc.end))
    kl_prompt = request.subject + " is a"  # ROME's essence prompt "{} is a"
    kl_char = len(kl_prompt) - 1 if settings.fact_token == "last" else len(request.subject) - 1
    kl_ids, kl_i = _token_at(tok, kl_prompt, kl_char)
    rows.append(kl_ids)
    look.append(kl_i)
    # padding on the left aligns the rows' ends: the tokens after each row's lookup token (the same prompt
    # tail and target in every template row) fill the same last columns, so the frozen prefix below covers
    # the template text whatever the tokenizer's own padding side
    ids, mask, shifts = pad_rows(rows, tok, device, side="left")
    n = len(prefixes)
    row_idx = torch.arange(n + 1, device=device)
    look_t = torch.tensor([i + s for i, s in zip(look, shifts, strict=True)], device=device)
    # scored positions: those predicting each target token (the NLL pairs), then the KL row's last token
    pairs = [(b, t) for b, (a, e) in enumerate(tgt) for t in range(a, e)]
    batch = ScoredBatch(
        ids, mask,
        rows=torch.tensor([b for b, _ in pairs] + [n], device=device),
        cols=torch.tensor([shifts[b] + t - 1 for b, t in pairs] + [shifts[n] + len(kl_ids) - 1], device=device),
        pair_pos=torch.arange(len(pairs), device=device),
        labels=torch.tensor([rows[b][t] for b, t in pairs], device=device),
        weights=torch.tensor([1.0 / (e - a) for (a, e) in tgt for _ in range(a, e)], device=device) / n,
    )  # fmt: skip
    with torch.no_grad():
        outs: dict[str, torch.Tensor] = {}
        h_out = module.register_forward_hook(lambda _m, _a, o: outs.__setitem__("out", o))
        try:
            with capture_input(decoder_blocks(model)[layer]) as box:
                kl_orig = scored_logprobs(model, batch)[-1:]  # (1, V)
        finally:
            h_out.remove()
        hidden_in = box.value.detach()
        v_init = outs["out"][0, look_t[0]].detach().float()
    # delta enters at each row's lookup column, so no column before the first of them can change
    first = int(look_t.min())
    prefix = freeze_prefix(model, batch, first) if first > 0 else None
    start = prefix.start if prefix is not None else 0
    delta = torch.zeros(v_init.shape, device=device, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=settings.v_lr)
    max_norm = settings.clamp_norm_factor * v_init.norm()
    with torch.enable_grad(), train_only(model, []), add_at_positions(module, delta, row_idx, look_t - start):
        for step in range(settings.v_num_grad_steps):
            opt.zero_grad(set_to_none=True)
            # blocks >= layer, columns >= start
            logp = scored_logprobs(model, batch, layer, hidden_in, prefix)
            nll = weighted_nll(logp, batch)
            kl = F.kl_div(logp[-1:], kl_orig, log_target=True, reduction="batchmean")
            loss = nll + settings.kl_factor * kl + settings.v_weight_decay * delta.norm() / v_init.norm() ** 2
            if log.isEnabledFor(logging.DEBUG):
                log.debug("v* step %d: loss %.4g (nll %.4g, kl %.4g, |delta| %.4g)",
                          step, loss.item(), nll.item(), kl.item(), delta.norm().item())  # fmt: skip
            if loss.item() < settings.early_stop_loss or step == settings.v_num_grad_steps - 1:
                break
            loss.backward()
            opt.step()
            with torch.no_grad():
                if delta.norm() > max_norm:
                    delta.mul_(max_norm / delta.norm())
    return delta.detach(), v_init


class Mom2Settings(Protocol):
    """The second-moment fields ROME's and MEMIT's hparams share (`mom2_*`, `stats_dir`)."""

    mom2_dataset: str
    mom2_n_samples: int
    mom2_dtype: str
    mom2_ridge: float
    stats_dir: str | None


def layer_covariance(model: nn.Module, tok, module_name: str, hp: Mom2Settings) -> torch.Tensor:
    """C (d_in, d_in), float64 on the model's device: E[k k^T] of `module_name`'s input over `hp.mom2_dataset`.

    Read through `core.stats.cached_layer_cov` (keyed by the model's identity, so it is the UNEDITED
    model's statistic whatever edits follow; `stats_dir=None` computes it in memory from the model as
    it is now). `hp.mom2_ridge` adds ridge * mean(diag C) * I (0 = the reference).
    """
    cov = cached_layer_cov(
        model, tok, module_name, dataset=hp.mom2_dataset, n_samples=hp.mom2_n_samples, dtype=hp.mom2_dtype,
        stats_dir=hp.stats_dir,
    )  # fmt: skip
    return _prepare_cov(cov, hp.mom2_ridge, next(model.parameters()).device)


def _prepare_cov(cov: torch.Tensor, ridge: float, device: torch.device) -> torch.Tensor:
    """`cov` as float64 on `device`, plus ridge * mean(diag) * I when `ridge` is set."""
    cov = cov.to(device=device, dtype=torch.float64)
    if ridge:
        cov = cov + ridge * cov.diagonal().mean() * torch.eye(
            cov.shape[0], dtype=cov.dtype, device=cov.device
        )
    return cov


@functools.lru_cache(maxsize=8)  # MEMIT edits up to ~5 layers; a 7B model's float64 factors are ~1 GB each
def _lu_of_cov_file(
    path: str, size: int, mtime_ns: int, ridge: float, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """LU factors of the statistic in cache file `path` as `layer_covariance` prepares it; the file's size and
    mtime are part of the key, so a rewritten file misses."""
    return torch.linalg.lu_factor(
        _prepare_cov(load_or_compute_cov(path, _no_compute), ridge, torch.device(device))
    )


def _no_compute() -> torch.Tensor:
    raise FileNotFoundError("covariance cache file vanished")


def covariance_solver(
    model: nn.Module, tok, module_name: str, hp: Mom2Settings
) -> Callable[[torch.Tensor], torch.Tensor]:
    """k (d_in,) or (d_in, n) -> C^-1 k (float64) with C = `layer_covariance(model, tok, module_name, hp)`.

    The LU factorisation (O(d^3): ~1 s for a 3072-wide key on 2 cores) is kept across calls when C comes
    from a cache file, which holds the unedited model's statistic whatever edits follow; LU plus triangular
    solves give exactly `torch.linalg.solve(C, k)`. A statistic computed in memory is factorised per call.
    """
    path = layer_cov_file(
        model, module_name, dataset=hp.mom2_dataset, n_samples=hp.mom2_n_samples, dtype=hp.mom2_dtype,
        stats_dir=hp.stats_dir,
    )  # fmt: skip
    if path is None:
        lu, piv = torch.linalg.lu_factor(layer_covariance(model, tok, module_name, hp))
    else:
        if not path.is_file():
            layer_covariance(model, tok, module_name, hp)  # computes and writes it
        st = path.stat()
        device = str(next(model.parameters()).device)
        lu, piv = _lu_of_cov_file(
            str(path.resolve()), st.st_size, st.st_mtime_ns, float(hp.mom2_ridge), device
        )
    return lambda k: torch.linalg.lu_solve(lu, piv, k.reshape(k.shape[0], -1)).reshape(k.shape)
