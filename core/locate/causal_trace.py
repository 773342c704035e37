"""Causal tracing of one fact (Meng et al. 2022, ROME §2.1 and Fig. 1-3; KnowEdit §5, Fig. 9).

Three runs of the prompt:
1. clean: p* = p(answer | prompt);
2. corrupted: Gaussian noise on the subject token embeddings, std `noise_scale` x the std of the token
   embedding matrix (ROME's 3 sigma; ROME measures sigma over the subject embeddings of its dataset, the
   matrix std is the dataset-free stand-in; `noise_std=3 * subject_embedding_std(...)` gives ROME's).
   The `n_samples` draws come from `torch.Generator().manual_seed(seed)` as ONE call
   `torch.randn((n_samples, n_subject_tokens, d))` (CPU, float32, then scaled) and run as one batch.
   Corrupted prob = the mean over draws;
3. restored, per (layer, position): the corrupted run with one clean state patched back in, the mean
   over the same draws. `kind="hidden"` restores the block output h_i^(l); `kind="mlp"`/`"attn"`
   restore the MLP (attention) output at position i in the `window` layers around l: ROME's range
   [l - window // 2, l + ceil(window / 2)), clipped to the model. ROME used window 10 on the 48-layer
   GPT-2 XL; the default here is `default_window(n_layers) = min(10, max(1, n_layers // 4))`, i.e. 1
   (the single layer) on the 4-layer world LMs, where 10 would restore every layer at once. Pass
   `window=10` for ROME's setting on a large model.
All (layer, position) configurations run batched (`max_batch_rows` rows per forward).

Indirect effect IE(l, i) = p_restored(l, i) - p_corrupted (ROME's "indirect effect"; its "total effect"
is p* - p_corrupted). `severed_trace` is ROME Fig. 3: restore h_i^(l) while the MLP (or attention)
outputs at position i of every layer stay frozen at their corrupted-run values (per noise draw; ROME
freezes all layers at the token, and those below l already hold their corrupted values), so the
remaining effect is what does NOT pass through that module.

The answer probability is that of the FIRST answer token (as ROME) unless `answer_mode="sequence"`:
then it is the product of the answer tokens' teacher-forced probabilities. Tokens come from one
tokenization of `prompt + sep + answer` (`core.eval.scoring.encode_answer`); the token axis is the
prompt's tokens (for "sequence" the answer prefix is input but never restored).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from core.eval.scoring import encode_answer
from core.locate.patching import Patch, Site, run_patched
from core.models.arch import get_arch, get_module

logger = logging.getLogger(__name__)

AnswerMode = Literal["first_token", "sequence"]
Positions = Literal["all", "from_subject"]


def default_window(n_layers: int) -> int:
    """ROME's window 10, scaled to shallow models: min(10, max(1, n_layers // 4))."""
    return min(10, max(1, n_layers // 4))


def subject_embedding_std(model: nn.Module, tok, subjects: Sequence[str]) -> float:
    """ROME's sigma (`collect_embedding_std`): std of the token embeddings of the subjects, pooled.

    Each subject is tokenized alone, without special tokens; 3 x this is ROME's `noise_std` for a dataset.
    """
    embed = get_module(model, get_arch(model).embed).weight.detach()
    ids = [i for s in subjects for i in tok(s, add_special_tokens=False)["input_ids"]]
    if not ids:
        raise ValueError("no subject tokens")
    return float(embed[torch.tensor(ids, device=embed.device)].float().std())


@dataclass(frozen=True, eq=False)
class TraceResult:
    """A causal trace of one fact; `restored` is (n_layers, n_tokens) over the prompt tokens."""

    prompt: str
    subject: str
    answer: str
    tokens: tuple[str, ...]  # decoded prompt tokens (the token axis)
    subject_range: tuple[int, int]  # [b, e) over the token axis
    answer_ids: tuple[int, ...]  # scored answer tokens (one in "first_token" mode)
    kind: Site
    severed: Literal["mlp", "attn"] | None
    window: int  # layers restored together (1 for "hidden")
    noise_std: float
    clean_prob: float
    corrupted_prob: float
    restored: torch.Tensor  # (n_layers, n_tokens) float32, CPU

    @property
    def indirect_effect(self) -> torch.Tensor:
        """restored - corrupted prob, (n_layers, n_tokens)."""
        return self.restored - self.corrupted_prob

    @property
    def n_layers(self) -> int:
        return int(self.restored.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.restored.shape[1])


@dataclass(frozen=True)
class TraceInput:
    """Token ids to run, the prompt length, the subject range and the answer tokens."""

    input_ids: tuple[int, ...]
    n_prompt: int
    subject_range: tuple[int, int]
    answer_ids: tuple[int, ...]


def encode_trace_input(
    tok, prompt: str, subject: str, answer: str, *, answer_mode: AnswerMode = "first_token", sep: str = " "
) -> TraceInput:
    """Ids of `prompt + sep + answer` (one tokenization); subject = the tokens over its first occurrence."""
    s0 = prompt.find(subject)
    if not subject or s0 < 0:
        raise ValueError(f"subject {subject!r} not in prompt {prompt!r}")
    enc = encode_answer(tok, prompt, answer, sep=sep)
    text = prompt + sep + answer
    offs = tok(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    if tuple(offs["input_ids"]) != enc.input_ids:
        raise RuntimeError("tokenizer is not deterministic on the same text")
    s1 = s0 + len(subject)
    hits = [i for i in range(enc.start) if not offs["special_tokens_mask"][i]
            and offs["offset_mapping"][i][0] < s1 and offs["offset_mapping"][i][1] > s0]
    if not hits or hits != list(range(hits[0], hits[-1] + 1)):
        raise ValueError(f"subject tokens of {prompt!r} are missing or not contiguous: {hits}")
    answer_ids = enc.input_ids[enc.start : enc.end if answer_mode == "sequence" else enc.start + 1]
    n_input = enc.end - 1 if answer_mode == "sequence" else enc.start
    return TraceInput(enc.input_ids[:n_input], enc.start, (hits[0], hits[-1] + 1), tuple(answer_ids))


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _probs(logits: torch.Tensor, answer_ids: torch.Tensor, n_samples: int) -> torch.Tensor:
    """Mean over noise draws of p(answer) per configuration: logits (C * S, n_read, V) -> (C,)."""
    logp = F.log_softmax(logits, -1).gather(-1, answer_ids.expand(logits.shape[0], -1)[..., None])
    return logp.squeeze(-1).sum(-1).exp().view(-1, n_samples).mean(1)


def _restore_mask(n_layers: int, n_prompt: int, n_input: int, window: int, first: int = 0) -> torch.Tensor:
    """(C, n_layers, n_input) bool; config c = layer * n + (position - first), n = n_prompt - first,
    restores the layers around `layer` at a position in [first, n_prompt)."""
    n_pos = n_prompt - first
    c = torch.arange(n_layers * n_pos)
    layer, pos = c // n_pos, first + c % n_pos
    lo, hi = (layer - window // 2).clamp(min=0), (layer - (-window // 2)).clamp(max=n_layers)
    ls = torch.arange(n_layers)
    mask = torch.zeros(len(c), n_layers, n_input, dtype=torch.bool)
    mask[c, :, pos] = (ls[None, :] >= lo[:, None]) & (ls[None, :] < hi[:, None])  # (C, n_layers)
    return mask


def _trace(
    model: nn.Module, tok, prompt: str, subject: str, answer: str, *, kind: Site,
    severed: Literal["mlp", "attn"] | None, noise_scale: float, noise_std: float | None, n_samples: int,
    seed: int, window: int | None, answer_mode: AnswerMode, sep: str, max_batch_rows: int,
    positions: Positions = "all",
) -> TraceResult:
    spec = get_arch(model)
    n_layers = spec.n_layers(model.config)
    if kind == "hidden" and window not in (None, 1):
        raise ValueError("a hidden-state trace restores one layer: window must be None or 1")
    window = 1 if kind == "hidden" else (default_window(n_layers) if window is None else window)
    if n_samples < 1 or window < 1:
        raise ValueError("n_samples and window must be >= 1")
    inp = encode_trace_input(tok, prompt, subject, answer, answer_mode=answer_mode, sep=sep)
    device = next(model.parameters()).device
    ids = torch.tensor([inp.input_ids], device=device)
    n_in, n_prompt, (b, e) = len(inp.input_ids), inp.n_prompt, inp.subject_range
    read = list(range(n_prompt - 1, n_prompt - 1 + len(inp.answer_ids)))
    answer_t = torch.tensor(inp.answer_ids, device=device)
    embed = get_module(model, spec.embed).weight
    std = float(noise_scale * embed.detach().float().std()) if noise_std is None else float(noise_std)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((n_samples, e - b, embed.shape[1]), generator=gen) * std  # (S, span, d)
    layers = range(n_layers)
    with _eval_mode(model):
        clean = run_patched(model, ids, read, record=[(kind, i) for i in layers])
        corrupt = run_patched(model, ids, read, noise=noise, span=(b, e),
                              record=[(severed, i) for i in layers] if severed else ())
        values = torch.stack([clean.recorded[f"{kind}.{i}"] for i in layers])  # (L, 1, T, d)
        first = b if positions == "from_subject" else 0
        mask = _restore_mask(n_layers, n_prompt, n_in, window, first)
        frozen = None
        if severed is not None:
            fmask = mask.any(1, keepdim=True).expand(-1, n_layers, -1)  # every layer at the restored position
            frozen = Patch(severed, fmask, torch.stack([corrupt.recorded[f"{severed}.{i}"] for i in layers]))
        restore, step, out = Patch(kind, mask, values), max(1, max_batch_rows // n_samples), []
        for c0 in range(0, mask.shape[0], step):
            c1 = min(c0 + step, mask.shape[0])
            patches = [restore.chunk(c0, c1)] + ([frozen.chunk(c0, c1)] if frozen is not None else [])
            run = run_patched(model, ids, read, n_configs=c1 - c0, noise=noise, span=(b, e), patches=patches)
            out.append(_probs(run.logits, answer_t, n_samples))
    p_clean = float(_probs(clean.logits, answer_t, 1)[0])
    p_corrupt = float(_probs(corrupt.logits, answer_t, n_samples)[0])
    restored = torch.full((n_layers, n_prompt), p_corrupt)  # positions before `first`: not run
    restored[:, first:] = torch.cat(out).view(n_layers, n_prompt - first).cpu()
    logger.debug("traced %r: p*=%.4f corrupted=%.4f (%s, window %d)", prompt, p_clean, p_corrupt, kind,
                 window)
    tokens = tuple(tok.decode([i]) for i in inp.input_ids[:n_prompt])
    return TraceResult(prompt, subject, answer, tokens, (b, e), inp.answer_ids, kind, severed, window, std,
                       p_clean, p_corrupt, restored)


def trace_fact(
    model: nn.Module,
    tok,
    prompt: str,
    subject: str,
    answer: str,
    *,
    noise_scale: float = 3.0,
    n_samples: int = 10,
    seed: int = 0,
    kind: Site = "hidden",
    window: int | None = None,
    noise_std: float | None = None,
    answer_mode: AnswerMode = "first_token",
    sep: str = " ",
    max_batch_rows: int = 1024,
    positions: Positions = "all",
) -> TraceResult:
    """Causal trace of (prompt, subject, answer): restored probs per (layer, prompt token) (module docstring).

    Invariants: with zero noise every restored prob equals p*; restoring a position before the subject
    gives the corrupted prob; restoring "hidden" at the last layer and last token gives p*.
    `positions="from_subject"` skips the runs that restore a position before the subject and writes the
    corrupted prob there (exact by the second invariant; about half the cost for "The <relation> of S").
    """
    return _trace(model, tok, prompt, subject, answer, kind=kind, severed=None, noise_scale=noise_scale,
                  noise_std=noise_std, n_samples=n_samples, seed=seed, window=window,
                  answer_mode=answer_mode, sep=sep, max_batch_rows=max_batch_rows, positions=positions)


def severed_trace(
    model: nn.Module,
    tok,
    prompt: str,
    subject: str,
    answer: str,
    *,
    sever: Literal["mlp", "attn"],
    noise_scale: float = 3.0,
    n_samples: int = 10,
    seed: int = 0,
    noise_std: float | None = None,
    answer_mode: AnswerMode = "first_token",
    sep: str = " ",
    max_batch_rows: int = 1024,
) -> TraceResult:
    """ROME Fig. 3: hidden-state restoration with the `sever` module outputs frozen at corrupted values."""
    if sever not in ("mlp", "attn"):
        raise ValueError(f"sever must be 'mlp' or 'attn', not {sever!r}")
    return _trace(model, tok, prompt, subject, answer, kind="hidden", severed=sever, noise_scale=noise_scale,
                  noise_std=noise_std, n_samples=n_samples, seed=seed, window=1,
                  answer_mode=answer_mode, sep=sep, max_batch_rows=max_batch_rows)
