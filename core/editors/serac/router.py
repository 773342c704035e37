"""SERAC inference: forward hooks that send in-scope rows of each base-model call to the counterfactual model.

Mitchell et al. 2022 (§3): with edit memory Z_e, the edited model answers

    f~(x) = h_psi(z_e*, x)   if  max_e g_phi(z_e, x) > 0.5,  e* = argmax_e g_phi(z_e, x)
    f~(x) = f_base(x)        otherwise,

the hard routing of EasyEdit `SERAC.forward` (`soft_weighting: false`). The evaluator calls the base
model object (`model(input_ids, attention_mask, position_ids, past_key_values, use_cache)`), so
`SeracRouter` installs a forward pre-hook and a forward hook on it. The base model runs unchanged on the
whole batch; the hook then decides, per row, from the row's decoded text (its real tokens, special
tokens skipped; under teacher forcing that is prompt + answer, as in EasyEdit, which classifies the
decoded `input_ids`), and replaces the logits of routed rows by the counterfactual model's logits.

Alignment. For a routed row with token ids x (its real tokens) and edit e*, h runs on the token sequence
`context_ids(e*) + x` (edit text, EOS separator, then the row's own tokens, BOS included), exactly the
sequence h was fine-tuned on, so no re-tokenisation happens and the logits at the last |x| columns are
the logits of the row's positions. In a batch the contexts differ in length: they are left-padded to
a common width P and put before the rows as the caller padded them (left or right); padding columns are
masked and position ids are counted over real tokens (context 0..L-1, row L..), so each routed row gets
the logits of `context + x` alone. Only the row's real columns are replaced; pads keep the base logits.
The caller's position ids are not used for h (its positions always follow the mask).

KV-cached decoding. A call with an empty or absent cache is a prefill: rows are classified once and,
when the call returns a cache, the routing, the contexts and h's own cache are kept with the identity
of the base cache object. A later call that passes that cache object continues both models by the new
tokens (h's mask is the context mask plus the caller's mask, its positions shift by the context length).
A cached call with any other non-empty cache is an error. Sequential edits push to one memory; each
`Undo` pops its entries and the last removes the hooks, leaving the model exactly as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.editors.retrieval import load_sentence_encoder
from core.editors.serac.archive import SeracArchive, context_ids
from core.memory.edit_memory import EditDescriptor, EditMemory
from core.types import EditRequest

log = logging.getLogger(__name__)


@dataclass
class _Stream:
    """Routing of one KV-cached generation, keyed by the base model's cache object."""

    cache: Any  # the base model's cache object returned by the prefill
    rows: torch.Tensor  # (R,) routed batch rows
    prefix_mask: torch.Tensor  # (R, P) mask of the left-padded contexts
    prefix_len: torch.Tensor  # (R,) real context tokens per routed row
    cf_cache: Any  # h's cache (None when no row is routed)


class SeracRouter:
    """Edit memory + scope classifier + counterfactual model hooked onto a base causal LM."""

    def __init__(self, model: nn.Module, tok, archive: SeracArchive, threshold: float) -> None:
        out_dim = model.get_output_embeddings().weight.shape[0]
        cf_dim = archive.cf_model.get_output_embeddings().weight.shape[0]
        if out_dim != cf_dim:
            raise ValueError(f"base model has {out_dim} output logits, the counterfactual model {cf_dim}")
        archive.check_tokenizer(tok)
        self.model, self.tok, self.archive, self.threshold = model, tok, archive, float(threshold)
        self.cf = archive.cf_model.to(next(model.parameters()).device)
        self.encoder = load_sentence_encoder(archive.encoder_name)
        self.memory = EditMemory(archive.head.out_dim)
        self.n_rows = self.n_routed = 0  # rows classified / routed since install (diagnostics)
        self._prefill: bool | None = None
        self._stream: _Stream | None = None
        self._handles = [
            model.register_forward_pre_hook(self._pre, with_kwargs=True),
            model.register_forward_hook(self._post, with_kwargs=True),
        ]

    # memory -------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Classifier embeddings f(E(text)).  # -> (N, d)"""
        return self.archive.head(self.encoder(list(texts)))

    def push(self, requests: Sequence[EditRequest]) -> tuple[EditDescriptor, ...]:
        """Store the edits (descriptor text z_e = edit_template(prompt, target_new)) with their keys."""
        texts = [self.archive.edit_text(r.prompt, r.target_new) for r in requests]
        entries = [
            EditDescriptor(r.case_id, r.prompt, r.target_new, t, context_ids(self.tok, t))
            for r, t in zip(requests, texts, strict=True)
        ]
        return self.memory.push(entries, self.embed(texts))

    def pop(self, entries: Sequence[EditDescriptor]) -> None:
        self.memory.pop(entries)
        self._stream = None

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._stream = None

    # hooks --------------------------------------------------------------------------------------
    def _pre(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if kwargs.get("inputs_embeds") is not None:
            raise NotImplementedError("SERAC routing needs input_ids (inputs_embeds is not supported)")
        if kwargs.get("return_dict") is False:
            raise NotImplementedError("SERAC routing edits the output's `logits`: call with return_dict=True")
        if kwargs.get("labels") is not None:
            raise NotImplementedError("SERAC routing replaces logits; a loss from `labels` would be stale")
        past = kwargs.get("past_key_values")
        self._prefill = past is None or past.get_seq_length() == 0

    def _post(self, module: nn.Module, args: tuple, kwargs: dict, output):
        prefill, self._prefill = self._prefill, None
        ids = kwargs["input_ids"] if kwargs.get("input_ids") is not None else args[0]
        mask = kwargs.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask.to(ids.device).long()
        if prefill:
            cache = output.get("past_key_values") if hasattr(output, "get") else None
            return self._route_prefill(ids, mask, output, cache)
        return self._route_step(ids, mask, kwargs.get("past_key_values"), output)

    def _route_prefill(self, ids: torch.Tensor, mask: torch.Tensor, output, cache):
        b = ids.shape[0]
        texts = self.tok.batch_decode(
            [row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True)], skip_special_tokens=True
        )
        prob, idx = self.memory.lookup(self.embed(texts))  # (B,), (B,)
        routed = (prob > self.threshold).nonzero().squeeze(-1).to(ids.device)  # (R,)
        self.n_rows, self.n_routed = self.n_rows + b, self.n_routed + len(routed)
        log.debug("SERAC: %d of %d rows in scope (max p %s)", len(routed), b, prob.tolist())
        if not len(routed):
            self._stream = (
                _Stream(cache, routed, mask.new_zeros(0, 0), routed, None) if cache is not None else None
            )
            return output
        dev = ids.device
        descriptors = self.memory.descriptors
        ctx = [descriptors[int(idx[r])].context_ids for r in routed.tolist()]
        lens = torch.tensor([len(c) for c in ctx], device=dev)  # (R,)
        width = int(lens.max())
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        prefix = torch.full((len(ctx), width), int(pad), dtype=torch.long, device=dev)
        pmask = torch.zeros((len(ctx), width), dtype=torch.long, device=dev)
        for i, c in enumerate(ctx):  # one short row copy per routed row; no per-token work
            prefix[i, width - len(c) :] = torch.tensor(c, device=dev)
            pmask[i, width - len(c) :] = 1
        full_mask = torch.cat([pmask, mask[routed]], 1)  # (R, P + T)
        pos = (full_mask.cumsum(-1) - 1).clamp(min=0)
        self._check_length(full_mask)
        with torch.no_grad():
            out = self.cf(
                input_ids=torch.cat([prefix, ids[routed]], 1),
                attention_mask=full_mask,
                position_ids=pos,
                use_cache=cache is not None,
            )
        if cache is not None:
            self._stream = _Stream(cache, routed, pmask, lens, out.past_key_values)
        return self._replace(output, routed, out.logits, mask[routed])

    def _route_step(self, ids: torch.Tensor, mask: torch.Tensor, past, output):
        s = self._stream
        if s is None or s.cache is not past:
            raise RuntimeError(
                "SERAC: a KV-cached call continues a cache that was not prefilled through "
                "this router (prefill with an empty cache after editing)"
            )
        if not len(s.rows):
            return output
        full_mask = torch.cat([s.prefix_mask, mask[s.rows]], 1)  # (R, P + past + t)
        self._check_length(full_mask)
        pos = (full_mask.cumsum(-1) - 1)[:, -ids.shape[1] :].clamp(min=0)  # (R, t)
        with torch.no_grad():
            out = self.cf(
                input_ids=ids[s.rows],
                attention_mask=full_mask,
                position_ids=pos,
                past_key_values=s.cf_cache,
                use_cache=True,
            )
        s.cf_cache = out.past_key_values
        return self._replace(output, s.rows, out.logits, mask[s.rows][:, -ids.shape[1] :])

    def _check_length(self, full_mask: torch.Tensor) -> None:
        limit = getattr(self.cf.config, "max_position_embeddings", None)
        if limit is not None and int(full_mask.sum(-1).max()) > limit:
            raise ValueError(
                f"SERAC: edit context + input exceed the counterfactual model's {limit} positions"
            )

    @staticmethod
    def _replace(output, rows: torch.Tensor, cf_logits: torch.Tensor, row_mask: torch.Tensor):
        """Put h's logits at the real columns of the routed rows (aligned on the last columns)."""
        logits = output["logits"]  # (B, T', V); T' < T when the caller keeps only the last logits
        t = logits.shape[1]
        cf = cf_logits[:, -t:].to(logits.dtype)  # (R, T', V)
        keep = row_mask[:, -t:, None].bool()
        output["logits"] = logits.index_copy(0, rows, torch.where(keep, cf, logits[rows]))
        return output


def find_router(model: nn.Module) -> SeracRouter | None:
    """The `SeracRouter` installed on `model`, if any (found among its forward pre-hooks)."""
    for hook in model._forward_pre_hooks.values():
        owner = getattr(hook, "__self__", None)
        if isinstance(owner, SeracRouter):
            return owner
    return None
