"""What an edit does to the weights: |ΔW| maps and vocabulary projection of the changed columns
(KnowEdit §5.1, Figs. 6 and 7).

`applied_edit` runs one registered method (`core.editors.registry`) on a snapshot of the model, yields
the `WeightDelta` (W' - W of every linear weight that changed, in the (d_out, d_in) convention of
`core.models.arch.as_out_in`) while the edit is live, and restores the model bit-exactly on exit (checked).

Columns. In the (d_out, d_in) form of the MLP output ("value", down) projection, column j is the vector
neuron j writes into the residual stream (Geva et al. 2021's value vector); "an editor changes a few
columns" (Fig. 6) means few large columns in ΔW. Summaries (pure, golden-tested): column norms; the
share of ||ΔW||_F^2 in the top-k columns; the effective number of changed columns, the participation
ratio (Σ c_j)^2 / Σ c_j^2 of the squared column norms c_j (1 for a one-column change, d_in for a change
spread evenly).

Vocabulary projection (Fig. 7). The n most-changed columns are pooled over every edited down projection
(ranked by ||ΔW[:, j]||, ties to the earlier module and lower index). Each column is projected to the
vocabulary before (W[:, j]) and after (W'[:, j]) the edit by `unembed`:
* "lm_head" (default): logits = E_out w, the LM head alone, as Geva et al. 2022 project value vectors
  ("FFN layers promote concepts in the vocabulary space"); KnowEdit's exact choice is [NF];
* "final_norm": the linear part of the final norm first, then the LM head: γ ⊙ (w - mean(w)) for
  LayerNorm, γ ⊙ w for RMSNorm. This is the column's direct effect on the logits up to the positive
  1/σ the norm applies to the whole residual; the norm's bias and the LM-head bias do not depend on the
  column and are left out. Applying the full (non-linear) norm to a lone column is not what the model
  does, so neither option does that.
Hit@k of the target: the target's FIRST token (one tokenization of prompt + " " + target) is among the
top k tokens of at least one projected column; rank = number of tokens with a strictly larger logit
(ties count in the target's favour).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import torch
from torch import nn

from core.editors.registry import get_method, resolve_hparams
from core.eval.scoring import encode_answer, score_answers
from core.models.arch import as_out_in, get_arch, get_module, is_conv1d
from core.types import EditRequest

log = logging.getLogger(__name__)

Projection = Literal["lm_head", "final_norm"]
PROJECTIONS: tuple[Projection, ...] = ("lm_head", "final_norm")


@dataclass(frozen=True, eq=False)
class WeightDelta:
    """W and W' - W per changed linear module (name -> (d_out, d_in) float32 CPU), plus other changed params."""

    before: dict[str, torch.Tensor]
    delta: dict[str, torch.Tensor]
    other: tuple[str, ...]  # changed parameters that are not linear weights (biases, norms, embeddings)


def _linear_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) or is_conv1d(m)}


def diff_weights(model: nn.Module, snapshot: Mapping[str, torch.Tensor]) -> WeightDelta:
    """The `WeightDelta` of the model now against `snapshot` (parameter name -> tensor before)."""
    params = dict(model.named_parameters())
    if params.keys() != snapshot.keys():
        added = sorted(set(params) - set(snapshot))[:5]
        raise ValueError(
            f"the edit added or removed parameters ({added} ...): ΔW needs in-place weight edits"
        )
    linear = _linear_modules(model)
    before, delta, other = {}, {}, []
    for name, p in params.items():
        old = snapshot[name]
        if torch.equal(p.detach(), old):
            continue
        module = name.removesuffix(".weight")
        if name.endswith(".weight") and module in linear:
            conv = is_conv1d(linear[module])
            before[module] = as_out_in(old, conv).float().cpu().clone()
            delta[module] = as_out_in(p.detach() - old, conv).float().cpu().clone()
        else:
            other.append(name)
    return WeightDelta(before, delta, tuple(other))


@contextmanager
def applied_edit(
    model: nn.Module, tok, requests: Sequence[EditRequest], method: str, hp: Any
) -> Iterator[WeightDelta]:
    """Apply `method` to `requests`, yield its `WeightDelta` while the edit is live, then undo it.

    Invariant: on exit every parameter is bit-identical to its value on entry (RuntimeError otherwise).
    """
    snapshot = {n: p.detach().clone() for n, p in model.named_parameters()}
    undo = get_method(method).edit(model, tok, requests, hp)
    try:
        yield diff_weights(model, snapshot)
    finally:
        undo()
        changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), snapshot[n])]
        if changed:
            raise RuntimeError(f"{method}: undo left parameters changed: {changed[:5]}")


def down_proj_layers(model: nn.Module) -> dict[str, int]:
    """MLP output ("value", down) projection module name -> layer index, from the arch spec."""
    spec = get_arch(model)
    return {spec.mlp_out_name(i): i for i in range(spec.n_layers(model.config))}


def column_norms(dw: torch.Tensor) -> torch.Tensor:
    """(d_in,) L2 norm of each column of a (d_out, d_in) matrix."""
    return dw.float().norm(dim=0)


def effective_columns(dw: torch.Tensor) -> float:
    """Participation ratio (Σ c_j)^2 / Σ c_j^2 of the squared column norms c_j; 0 for a zero matrix."""
    c = column_norms(dw).double() ** 2
    total = float(c.sum())
    return 0.0 if total == 0 else total**2 / float((c**2).sum())


def top_column_share(dw: torch.Tensor, k: int) -> float:
    """Share of ||ΔW||_F^2 in the k columns of largest norm; 0 for a zero matrix."""
    c = column_norms(dw).double() ** 2
    total = float(c.sum())
    return 0.0 if total == 0 else float(c.topk(min(k, c.numel())).values.sum()) / total


def delta_stats(dw: torch.Tensor) -> dict[str, float]:
    """||ΔW||_F, max |ΔW|, effective columns and top-1/top-5 column shares of one (d_out, d_in) ΔW."""
    return {
        "fro_norm": float(dw.norm()),
        "max_abs": float(dw.abs().max()),
        "effective_columns": effective_columns(dw),
        "top1_share": top_column_share(dw, 1),
        "top5_share": top_column_share(dw, 5),
    }


def top_changed_columns(deltas: Mapping[str, torch.Tensor], n: int) -> list[tuple[str, int]]:
    """The n columns (module, index) of largest ||ΔW[:, j]|| pooled over `deltas`; zero columns never count.

    Ties go to the earlier module (mapping order) and then the lower column index.
    """
    names = list(deltas)
    if not names:
        return []
    norms = torch.cat([column_norms(deltas[m]) for m in names])  # (Σ d_in,)
    owner = torch.cat([torch.full((deltas[m].shape[1],), i) for i, m in enumerate(names)])
    index = torch.cat([torch.arange(deltas[m].shape[1]) for m in names])
    order = torch.sort(-norms, stable=True).indices[:n]
    return [(names[int(owner[i])], int(index[i])) for i in order if norms[i] > 0]


def unembed(model: nn.Module, vectors: torch.Tensor, projection: Projection = "lm_head") -> torch.Tensor:
    """(n, V) float32 logits of residual-stream vectors (n, d) through the LM head (module docstring)."""
    spec = get_arch(model)
    head = get_module(model, spec.lm_head).weight.detach().float().cpu()  # (V, d)
    v = vectors.float().cpu()
    if projection == "final_norm":
        norm = get_module(model, spec.final_norm)
        if isinstance(norm, nn.LayerNorm):
            v = v - v.mean(-1, keepdim=True)
        gain = getattr(norm, "weight", None)
        if gain is not None:
            v = v * gain.detach().float().cpu()
    elif projection != "lm_head":
        raise ValueError(f"unknown projection {projection!r}; expected one of {PROJECTIONS}")
    return v @ head.T


def target_ranks(logits: torch.Tensor, target_id: int) -> torch.Tensor:
    """(n,) number of tokens whose logit is strictly larger than the target's, per row of (n, V) logits."""
    return (logits > logits[:, target_id : target_id + 1]).sum(-1)


def hit_at_k(ranks: torch.Tensor, k: int) -> bool:
    """True when the target is in the top k of at least one row (some rank < k)."""
    return bool((ranks < k).any())


def chance_hit_at_k(k: int, vocab_size: int, n_columns: int) -> float:
    """Hit@k of random columns: 1 - (1 - k/V)^n, the chance that the target is in the top k of any of n
    columns whose rankings are independent and uniform (the floor the "before" bars sit on)."""
    if not 0 < k <= vocab_size or n_columns < 0:
        raise ValueError(
            f"need 0 < k <= vocab_size and n_columns >= 0, got k={k}, V={vocab_size}, n={n_columns}"
        )
    return 1.0 - (1.0 - k / vocab_size) ** n_columns


def vocab_hits(
    model: nn.Module,
    wd: WeightDelta,
    target_id: int,
    *,
    modules: Sequence[str],
    n_columns: int = 5,
    ks: Sequence[int] = (1, 10, 50),
    projection: Projection = "lm_head",
) -> dict[str, float]:
    """Hit@k before/after of the top `n_columns` changed columns of `modules` (empty dict if none changed)."""
    deltas = {m: wd.delta[m] for m in modules if m in wd.delta}
    cols = top_changed_columns(deltas, n_columns)
    if not cols:
        return {}
    w_before = torch.stack([wd.before[m][:, j] for m, j in cols])  # (n, d_out)
    w_after = w_before + torch.stack([wd.delta[m][:, j] for m, j in cols])
    out: dict[str, float] = {"n_columns": float(len(cols))}
    for stage, w in (("before", w_before), ("after", w_after)):
        ranks = target_ranks(unembed(model, w, projection), target_id)
        out[f"{stage}/best_rank"] = float(ranks.min())
        out.update({f"{stage}/hit@{k}": float(hit_at_k(ranks, k)) for k in ks})
    return out


def edit_succeeded(model: nn.Module, tok, request: EditRequest) -> bool:
    """Every target token is the teacher-forced argmax after the prompt (token accuracy 1)."""
    score = score_answers(model, tok, [request.prompt], [request.target_new])[0]
    return bool((score.argmax_ids == score.label_ids).all())


@dataclass(frozen=True, eq=False)
class EditAnalysis:
    """Tidy rows of `analyse_edits` and the kept `WeightDelta`s, keyed (method, case_id)."""

    module_rows: list[dict[str, Any]]
    case_rows: list[dict[str, Any]]
    deltas: dict[tuple[str, str], WeightDelta]


def analyse_edits(
    model: nn.Module,
    tok,
    requests: Sequence[EditRequest],
    methods: Mapping[str, Any],
    *,
    n_columns: int = 5,
    ks: Sequence[int] = (1, 10, 50),
    projections: Sequence[Projection] = PROJECTIONS,
    keep_deltas: int = 0,
) -> EditAnalysis:
    """Edit each request alone with each method (name -> hparams), measure, restore (Figs. 6-7).

    module_rows: one per (method, case, changed down projection): layer, ||ΔW||_F, max |ΔW|, effective
    columns, top-1/top-5 column shares. case_rows: one per (method, case, projection): edit success and
    `vocab_hits`. The deltas of the first `keep_deltas` requests are kept for heat maps.
    """
    down = down_proj_layers(model)
    module_rows, case_rows, kept = [], [], {}
    for i, req in enumerate(requests):
        enc = encode_answer(tok, req.prompt, req.target_new)
        target_id = enc.input_ids[enc.start]
        for method, hp in methods.items():
            with applied_edit(model, tok, [req], method, hp) as wd:
                success = edit_succeeded(model, tok, req)
            base = {"method": method, "case_id": req.case_id}
            changed = [m for m in wd.delta if m in down]
            module_rows += [
                {**base, "module": m, "layer": down[m], **delta_stats(wd.delta[m])} for m in changed
            ]
            for proj in projections:
                kw = {"modules": list(down), "n_columns": n_columns, "ks": ks, "projection": proj}
                hits = vocab_hits(model, wd, target_id, **kw)
                extra = {"projection": proj, "success": float(success), "other_params_changed": len(wd.other)}
                case_rows.append({**base, **extra, **hits})
            if i < keep_deltas:
                kept[(method, req.case_id)] = wd
            log.debug("%s on %s: success %s, %d modules changed", method, req.case_id, success, len(wd.delta))
    return EditAnalysis(module_rows, case_rows, kept)


def load_registered(names: Sequence[str], hparams_path: str, *, strict: bool = False) -> dict[str, Any]:
    """Hparams of each usable method in `names` from `hparams_path.format(method=name)`, in order.

    `core.editors.registry.resolve_hparams`: unregistered, without a file, or naming a trained
    checkpoint that is missing (MEND's `archive`) is skipped with a WARNING or, with `strict`, raises.
    """
    return resolve_hparams(names, hparams_path, strict=strict)[0]


def summarize_columns(module_rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Mean ΔW statistics per (method, layer) over cases, with the number of cases (Fig. 6)."""
    df = pd.DataFrame(module_rows)
    cols = ["fro_norm", "max_abs", "effective_columns", "top1_share", "top5_share"]
    out = df.groupby(["method", "layer"], sort=False)[cols].mean()
    return out.assign(n_cases=df.groupby(["method", "layer"], sort=False).size()).reset_index()


def summarize_hits(
    case_rows: Sequence[Mapping[str, Any]], ks: Sequence[int] = (1, 10, 50), *, common_success: bool = True
) -> pd.DataFrame:
    """Hit@k x100 before/after per (method, projection) (Fig. 7).

    With `common_success`, only the cases that every method in the rows edited successfully count (the
    paper's "edits that all methods got right"); otherwise each method's own successful edits.
    """
    df = pd.DataFrame(case_rows)
    ok = df[df["success"] == 1.0]
    if common_success:
        n_methods = df["method"].nunique()
        good = ok.groupby("case_id")["method"].nunique()
        ok = ok[ok["case_id"].isin(good[good == n_methods].index)]
    cols = [f"{s}/hit@{k}" for s in ("before", "after") for k in ks]
    for c in cols:
        if c not in ok:
            ok = ok.assign(**{c: float("nan")})
    out = ok.groupby(["method", "projection"], sort=False)[cols].mean() * 100
    counts = ok.groupby(["method", "projection"], sort=False).size().rename("n_cases")
    success = df.groupby(["method", "projection"], sort=False)["success"].mean().rename("success_rate") * 100
    return pd.concat([counts, success, out], axis=1).reset_index().fillna({"n_cases": 0})
