"""ICE and IKE: in-context editing through a reversible context prefix on the model's forward pass.

Both leave the weights alone and put the new fact in the context. EasyEdit scores the text
`''.join(demos) + "New Fact: {prompt} {target_new}\nPrompt: {query}" + " " + answer` (`icl_lm_eval`,
easyedit-notes §2.8), for the edit prompt, the rephrases, portability and locality queries alike, so the
context is one fixed string per edit:  context = ''.join(demos) + fact lines + query_prefix.
- ICE (KnowEdit Table 4's "ICE" column; Zhang et al. 2024 §4.1 after Cohen et al. 2024) is EasyEdit's IKE
  with `use_icl_examples=False`: no demonstrations, `fact_template: "New Fact: {prompt} {target}\n"`,
  `query_prefix: "Prompt: "`. Cohen et al.'s own prompt is the variant `fact_template: "Imagine that
  {prompt} {target}\n"`, `query_prefix: ""`.
- IKE (Zheng et al. 2023, §3) adds k demonstrations retrieved from a pool (`core.editors.retrieval`) and
  then the copy demonstration of the new fact itself (EasyEdit `ike_main.py`).

The evaluator runs plain prompts through the model object, so `edit` installs a `ContextPrefix`: a
forward pre-hook and a forward hook on the model that make `model(input_ids, attention_mask,
position_ids, past_key_values, ...)` compute as if the context tokens preceded every row, and strip the
context positions from the logits and hidden states. Invariants: with right or left padding, with or
without explicit position ids, logits equal those of the plain model on `context_ids + row_ids` (context
columns come first and are attended by every real token; padding stays masked); with a tokenizer that
adds BOS, the row's BOS is replaced by the context's last token and the context brings its own BOS, so
the text has exactly one BOS. KV-cached decoding works: a call whose cache is empty (prefill) prepends the
context and leaves it in the cache; later calls only extend the mask and shift positions by the prefix
length. Tokens are concatenated, not re-tokenised text: with byte-level BPE, the query's first word lacks
the leading space EasyEdit's single tokenisation gives it (" What" becomes " " + "What" when the prefix
ends with a space). `inputs_embeds` is not supported. Locality is computed with the context present, as
EasyEdit's ICL evaluation does. Repeated edits (sequential protocol) add their facts to the one installed
prefix; each `Undo` removes its own facts, and the last removes the hooks, leaving the model as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from core.data import read_requests
from core.editors import retrieval
from core.editors.base import Undo, UndoError
from core.types import EditRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ICEHyperParams:
    """ICE: the context is the fact lines (`fact_template` with {prompt}, {target}) plus `query_prefix`."""

    fact_template: str
    query_prefix: str

    def __post_init__(self) -> None:
        if not isinstance(self.fact_template, str) or not isinstance(self.query_prefix, str):
            raise ValueError("fact_template and query_prefix must be strings")
        try:
            self.fact_template.format(prompt="p", target="t")
        except (KeyError, IndexError) as e:
            raise ValueError(f"fact_template may use only {{prompt}} and {{target}}: {e}") from None
        if "{prompt}" not in self.fact_template or "{target}" not in self.fact_template:
            raise ValueError(f"fact_template needs {{prompt}} and {{target}}, got {self.fact_template!r}")


@dataclass(frozen=True, kw_only=True)
class IKEHyperParams(ICEHyperParams):
    """IKE: ICE plus `k` demonstrations retrieved from the pool file `demo_pool` (reader `demo_pool_layout`).

    `sentence_model` names the encoder (`core.editors.retrieval.load_sentence_encoder`);
    `embedding_cache_dir=None` embeds the pool on every call.
    """

    k: int
    demo_pool: str
    demo_pool_layout: str
    sentence_model: str
    embedding_cache_dir: str | None

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 0:
            raise ValueError(f"k must be an int >= 0, got {self.k!r}")
        for name in ("demo_pool", "demo_pool_layout", "sentence_model"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")


class ContextPrefix:
    """Forward hooks that run a causal LM as if `context` (text, tokenised once) preceded each input row."""

    def __init__(self, model: nn.Module, tok, query_prefix: str, fact_template: str) -> None:
        self.tok, self.query_prefix, self.fact_template = tok, query_prefix, fact_template
        self.entries: list[tuple[tuple[str, ...], tuple[str, ...]]] = []  # (demos, fact lines) per edit
        bos = tok.bos_token_id
        self.adds_bos = bos is not None and tok("a")["input_ids"][:1] == [bos]
        self._strip, self._width = 0, 0
        self._handles = [
            model.register_forward_pre_hook(self._pre, with_kwargs=True),
            model.register_forward_hook(self._post, with_kwargs=True),
        ]
        self._refresh()

    @property
    def text(self) -> str:
        """The context string: all demonstrations, then all fact lines, then the query prefix."""
        return (
            "".join(d for demos, _ in self.entries for d in demos)
            + "".join(f for _, facts in self.entries for f in facts)
            + self.query_prefix
        )

    def _refresh(self) -> None:
        ids = list(self.tok(self.text, add_special_tokens=False)["input_ids"])
        if self.adds_bos:
            ids = [self.tok.bos_token_id, *ids]
        self.ids = torch.tensor(ids, dtype=torch.long)  # (C,)
        # With BOS the row's own BOS column is overwritten by the last context token; P columns are added.
        self.prefix, self.replacement = (
            (self.ids[:-1], int(self.ids[-1])) if self.adds_bos else (self.ids, None)
        )

    def push(self, demos: Sequence[str], facts: Sequence[str]) -> None:
        self.entries.append((tuple(demos), tuple(facts)))
        self._refresh()

    def pop(self, entry: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
        if not self.entries or self.entries[-1] != entry:
            raise UndoError("in-context edits must be undone last first")
        self.entries.pop()
        self._refresh()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()

    def _pre(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if len(args) > 1:
            raise TypeError("ContextPrefix: pass model inputs other than input_ids as keywords")
        if args:
            kwargs = {**kwargs, "input_ids": args[0]}
        ids = kwargs.get("input_ids")
        if ids is None or kwargs.get("inputs_embeds") is not None:
            raise NotImplementedError("ContextPrefix needs input_ids (inputs_embeds is not supported)")
        past = kwargs.get("past_key_values")
        prefill = past is None or past.get_seq_length() == 0
        dev, (b, t), p = ids.device, ids.shape, len(self.prefix)
        limit = getattr(module.config, "max_position_embeddings", None)
        used = t + (p if prefill else past.get_seq_length())  # the cache already holds the context
        if limit is not None and used > limit:
            raise ValueError(
                f"ContextPrefix: {p} context + {used - p} input tokens exceed the model's {limit}"
            )
        mask, pos = kwargs.get("attention_mask"), kwargs.get("position_ids")
        ones = torch.ones(b, p, dtype=mask.dtype if mask is not None else torch.long, device=dev)
        self._strip, self._width = (p, p + t) if prefill else (0, 0)
        if prefill:
            if self.replacement is not None:
                first = (
                    mask.long().argmax(1)
                    if mask is not None
                    else torch.zeros(b, dtype=torch.long, device=dev)
                )
                rows = torch.arange(b, device=dev)
                if not bool((ids[rows, first] == self.tok.bos_token_id).all()):
                    raise ValueError("ContextPrefix: every row must start with BOS for this tokenizer")
                ids = ids.clone()
                ids[rows, first] = self.replacement
            kwargs["input_ids"] = torch.cat([self.prefix.to(dev).expand(b, p), ids], 1)  # (B, P+T)
            if kwargs.get("labels") is not None:
                kwargs["labels"] = torch.cat([torch.full_like(ones, -100), kwargs["labels"]], 1)
            if pos is not None:
                kwargs["position_ids"] = torch.cat([torch.arange(p, device=dev).expand(b, p), pos + p], 1)
        elif pos is not None:
            kwargs["position_ids"] = pos + p
        if mask is not None:
            kwargs["attention_mask"] = torch.cat([ones, mask], 1)  # the cache holds the context too
        cache_pos = kwargs.get("cache_position")
        if cache_pos is not None:
            pre = torch.arange(p, device=dev) if prefill else cache_pos[:0]
            kwargs["cache_position"] = torch.cat([pre, cache_pos + p])
        return (), kwargs

    def _post(self, module: nn.Module, args: tuple, kwargs: dict, output):
        p, width = self._strip, self._width
        self._strip = self._width = 0
        if not p:
            return output
        logits = output.get("logits") if hasattr(output, "get") else None
        if logits is not None and logits.shape[1] == width:  # not cut by logits_to_keep
            output["logits"] = logits[:, p:]
        hidden = output.get("hidden_states") if hasattr(output, "get") else None
        if hidden is not None:
            output["hidden_states"] = tuple(h[:, p:] for h in hidden)
        return output


def find_prefix(model: nn.Module) -> ContextPrefix | None:
    """The `ContextPrefix` installed on `model`, if any (found among its forward pre-hooks)."""
    for hook in model._forward_pre_hooks.values():
        owner = getattr(hook, "__self__", None)
        if isinstance(owner, ContextPrefix):
            return owner
    return None


def install_context(
    model: nn.Module, tok, hp: ICEHyperParams, demos: Sequence[str], facts: Sequence[str]
) -> Undo:
    """Add `demos` and `facts` to the model's context prefix (installing it if needed); `Undo` takes them out."""
    prefix = find_prefix(model)
    if prefix is None:
        prefix = ContextPrefix(model, tok, hp.query_prefix, hp.fact_template)
    elif prefix.tok is not tok or (prefix.query_prefix, prefix.fact_template) != (
        hp.query_prefix,
        hp.fact_template,
    ):
        raise ValueError("the model carries an in-context edit with another tokenizer or template")
    entry = (tuple(demos), tuple(facts))
    prefix.push(*entry)

    def restore() -> None:
        prefix.pop(entry)
        if not prefix.entries:
            prefix.remove()

    return Undo(restore, f"remove {len(facts)} in-context fact(s) and {len(demos)} demonstration(s)")


def _facts(requests: Sequence[EditRequest], hp: ICEHyperParams) -> list[str]:
    if not requests:
        raise ValueError("no requests to edit")
    return [retrieval.fact_text(hp.fact_template, r.prompt, r.target_new) for r in requests]


def apply_ice(model: nn.Module, tok, requests: Sequence[EditRequest], hp: ICEHyperParams) -> Undo:
    """ICE: prepend the new facts (no demonstrations) to every input of `model`."""
    return install_context(model, tok, hp, (), _facts(requests, hp))


def ike_demonstrations(requests: Sequence[EditRequest], hp: IKEHyperParams) -> list[str]:
    """For each request: its k nearest pool demonstrations (best first), then its own copy demonstration."""
    demos: list[str] = []
    if hp.k > 0:
        encoder = retrieval.load_sentence_encoder(hp.sentence_model)
        pool = retrieval.pool_demonstrations(
            read_requests(hp.demo_pool_layout, hp.demo_pool), hp.fact_template, hp.query_prefix
        )
        pool_emb = retrieval.embed_pool(encoder, hp.sentence_model, pool, hp.embedding_cache_dir)
        queries = encoder([retrieval.query_sentence(hp.fact_template, hp.query_prefix, r) for r in requests])
    for i, r in enumerate(requests):
        if hp.k > 0:
            demos += [pool[j] for j in retrieval.nearest(queries[i], pool_emb, hp.k)]
        demos.append(retrieval.demonstration(hp.fact_template, hp.query_prefix, r, r.prompt, r.target_new))
    return demos


def apply_ike(model: nn.Module, tok, requests: Sequence[EditRequest], hp: IKEHyperParams) -> Undo:
    """IKE: prepend retrieved demonstrations, the copy demonstration and the new facts to every input."""
    facts = _facts(requests, hp)
    return install_context(model, tok, hp, ike_demonstrations(requests, hp), facts)
