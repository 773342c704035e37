"""KN: knowledge-neuron editing (Dai et al. 2022, "Knowledge Neurons in Pretrained Transformers", ACL).

For each request, in order:
1. Prompts: the edit prompt, plus its rephrases with `use_rephrases` (Dai et al. use several prompts
   of one fact; EasyEdit passes the edit prompt alone). The old answer is the request's ground truth
   (`old_answer="ground_truth"`, the paper's fact; a request without one falls back to the prediction)
   or the model's greedy continuation of as many tokens as the target (`"prediction"`).
2. Attribution (paper Eq. 3-4): with w the intermediate MLP activation (the input of the MLP output
   projection, `ArchSpec.mlp_out`) at the LAST prompt position of layer l, and P(w) the probability of
   the old answer (teacher-forced product over its tokens) when that activation is replaced by w,
       Attr_i = (w_i / m) * sum_{k=1..m} dP(k/m * w) / dw_i          (Riemann approximation, m = `steps`).
   All (prompt, layer, step) rows run as one tensor batch (chunked by `ig_batch_size` rows); each row
   scales exactly one layer. dP/dw is computed as P * dlog P/dw with P in float64, so a small P does
   not underflow. The attributions of one layer sum to P(w) - P(0) as m grows (IG completeness; tested).
3. Selection (paper §3.2): per prompt keep neurons with Attr > `adaptive_threshold` x its maximum over
   all layers (coarse neurons); keep those coarse for at least `p` x n_prompts prompts (p = 0 keeps all
   coarse neurons: EasyEdit's `refine: false`).
4. Update (paper §5 "updating facts"): for each kept neuron (l, i) the value vector v = W_out[:, i]
   ((d_out, d_in) view, so GPT-2's Conv1D row) becomes
       v - lambda1 * s_old * e(old answer) + lambda2 * s_new * e(target_new),
   with e() the `token_reduce` of the answer tokens' embeddings (`embedding`: the input word embedding,
   as the paper and EasyEdit; or the output one) and s = |v| / |e| when `scale="value_norm"` (the
   authors' released code, with lambda1 = 1, lambda2 = 8), s = 1 when `scale="raw"` (EasyEdit, which
   subtracts the greedy prediction: `old_answer="prediction"`). With `signed` (our extension for SwiGLU,
   whose activations take both signs; the paper's GELU neurons fire positively) each neuron's change is
   multiplied by the sign of its activation at the edit prompt, so it pushes the residual the right way.
Only W_out weights of the scanned layers change; `Undo` restores them bit-exactly.

Fixes against EasyEdit (easyedit-notes §4 KN): attribution on the activation that multiplies the value
vectors (EasyEdit hooks the pre-activation `c_fc` / `gate_proj` output); target tokens from one
tokenization of `prompt + " " + target` (EasyEdit encodes the bare target, without GPT-2's space);
steps batched with k = 1..m (EasyEdit's `linspace(0, 1, steps)` spends a step at 0, and `steps: 1`
for llama is no integration); the IG batch is a field of its own, independent of the protocol's batch
(notes §10.7); no model-name dispatch (arch templates). The relation-level filter of the authors' code
(drop neurons shared by > 10% of a relation's facts) needs other facts and is not done.
"""

from __future__ import annotations

import contextlib
import logging
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from core.editors.base import Undo, model_device, resolve_module_name, snapshot_parameters, train_only
from core.eval.scoring import EncodedAnswer, encode_answer, greedy_generate
from core.models.arch import get_arch, weight_view
from core.models.inputs import position_ids_from_mask
from core.types import EditRequest

log = logging.getLogger(__name__)

Neuron = tuple[int, int]  # (layer, index of the intermediate neuron)


@dataclass(frozen=True, kw_only=True)
class KNHyperParams:
    """Hparams of KN; `layers=None` scans every layer (Dai et al.; EasyEdit)."""

    layers: tuple[int, ...] | None
    steps: int  # m of the Riemann approximation
    ig_batch_size: int  # (prompt, layer, step) rows per forward/backward
    adaptive_threshold: float  # t as a fraction of the prompt's maximum attribution
    p: float  # sharing fraction over prompts; 0 keeps every coarse neuron
    use_rephrases: bool
    old_answer: Literal["ground_truth", "prediction"]
    lambda1: float
    lambda2: float
    scale: Literal["value_norm", "raw"]
    token_reduce: Literal["sum", "mean", "first"]
    embedding: Literal["input", "output"]
    signed: bool  # multiply each neuron's update by the sign of its activation at the edit prompt

    def __post_init__(self) -> None:
        for name, tp in typing.get_type_hints(type(self)).items():  # ints >= 1, floats >= 0, bools, Literals
            v = getattr(self, name)
            if typing.get_origin(tp) is Literal and v not in typing.get_args(tp):
                raise ValueError(f"{name} must be one of {typing.get_args(tp)}, got {v!r}")
            bad_number = isinstance(v, bool) or not isinstance(v, int | float)
            if (tp is bool and not isinstance(v, bool)) or (tp is int and (bad_number or v < 1)):
                raise ValueError(f"{name} must be {'a bool' if tp is bool else 'an int >= 1'}, got {v!r}")
            if tp is float and (bad_number or v < 0):
                raise ValueError(f"{name} must be a number >= 0, got {v!r} (write floats as 2.0e-1 in YAML)")
        if self.adaptive_threshold > 1 or self.p > 1:
            raise ValueError(
                f"adaptive_threshold and p are fractions in [0, 1], got {self.adaptive_threshold}, {self.p}"
            )
        if self.layers is not None and (
            not isinstance(self.layers, tuple)
            or not self.layers
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in self.layers)
            or list(self.layers) != sorted(set(self.layers))
        ):
            raise ValueError(f"layers must be null or increasing non-negative ints, got {self.layers!r}")


def kn_layers(model: nn.Module, hp: KNHyperParams) -> tuple[int, ...]:
    """The scanned layers: `hp.layers`, or all layers of the model."""
    n = get_arch(model).n_layers(model.config)
    layers = hp.layers if hp.layers is not None else tuple(range(n))
    if max(layers) >= n:
        raise ValueError(f"layers {layers} out of range for a {n}-layer model")
    return layers


@dataclass(frozen=True)
class _AnswerBatch:
    """Prompt + old-answer rows padded once; (P, T) ids/mask/pos, (P,) last prompt column, (P, A) answers."""

    ids: torch.Tensor
    mask: torch.Tensor
    pos: torch.Tensor
    look: torch.Tensor
    label_cols: torch.Tensor
    labels: torch.Tensor
    answer_mask: torch.Tensor


def _answer_batch(tok, answers: Sequence[EncodedAnswer], device) -> _AnswerBatch:
    width, left = max(len(a.input_ids) for a in answers), tok.padding_side == "left"
    pad_id = next((i for i in (tok.pad_token_id, tok.eos_token_id) if i is not None), 0)
    rows = [[int(pad_id)] * (width - len(a.input_ids)) for a in answers]
    rows = [
        p + list(a.input_ids) if left else list(a.input_ids) + p for p, a in zip(rows, answers, strict=True)
    ]
    ids = torch.tensor(rows, device=device)
    shift = torch.tensor([width - len(a.input_ids) if left else 0 for a in answers], device=device)
    col = torch.arange(width, device=device)
    lens = torch.tensor([len(a.input_ids) for a in answers], device=device)
    mask = ((col >= shift[:, None]) & (col < (shift + lens)[:, None])).long()  # (P, T)
    start = shift + torch.tensor([a.start for a in answers], device=device)
    n_ans = torch.tensor([a.end - a.start for a in answers], device=device)
    offs = torch.arange(int(n_ans.max()), device=device)
    label_cols = (start[:, None] + offs[None]).clamp(max=width - 1)  # (P, A)
    return _AnswerBatch(
        ids,
        mask,
        position_ids_from_mask(mask),
        start - 1,
        label_cols,
        ids.gather(1, label_cols),
        offs[None] < n_ans[:, None],
    )


@contextlib.contextmanager
def _pre_hooks(modules: Sequence[nn.Module], fns: Sequence) -> Iterator[None]:
    handles = [m.register_forward_pre_hook(f) for m, f in zip(modules, fns, strict=True)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _replace_input(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor):
    """A pre-hook writing `values` (n, d_m) into the module input at (rows, cols), out of place."""

    def hook(_m, args):
        x = args[0].clone()
        x[rows, cols] = values.to(x.dtype)
        return (x, *args[1:])

    return hook


def integrated_gradients(
    model: nn.Module,
    tok,
    answers: Sequence[EncodedAnswer],
    layers: Sequence[int],
    *,
    steps: int,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(attributions, activations), both (n_prompts, n_layers, d_m) float64: paper Eq. 4 per prompt.

    `answers[j]` holds the ids of prompt j + its old answer and the answer span; the scaled activation
    is the input of each layer's MLP output projection at the last prompt token (index start - 1).
    """
    device = model_device(model)
    modules = [model.get_submodule(get_arch(model).mlp_out_name(layer)) for layer in layers]
    b = _answer_batch(tok, answers, device)
    rows_p, n_l = torch.arange(len(answers), device=device), len(layers)
    acts: list[torch.Tensor] = []  # baseline activations w (P, L, d_m) from one clean forward
    with torch.no_grad(), _pre_hooks(modules, [lambda _m, a: acts.append(a[0][rows_p, b.look])] * n_l):
        model.base_model(input_ids=b.ids, attention_mask=b.mask, position_ids=b.pos)
    base = torch.stack(acts, dim=1).float()
    # rows r = (prompt, layer, step k) with alpha = k / m, k = 1..m; each row scales one layer
    grid = torch.cartesian_prod(
        rows_p, torch.arange(n_l, device=device), torch.arange(1, steps + 1, device=device)
    )
    grad_sum = torch.zeros(*base.shape, dtype=torch.float64, device=device)
    head = model.get_output_embeddings()
    for chunk in grid.split(batch_size):
        cp, cl, alpha = chunk[:, 0], chunk[:, 1], chunk[:, 2, None].float() / steps
        scaled = (alpha * base[cp, cl]).requires_grad_(True)  # (R, d_m) leaf
        crow = torch.arange(len(chunk), device=device)
        sel = [cl == j for j in range(n_l)]
        hooks = [_replace_input(crow[s], b.look[cp[s]], scaled[s]) for s in sel]
        with torch.enable_grad(), _pre_hooks(modules, hooks):
            h = model.base_model(input_ids=b.ids[cp], attention_mask=b.mask[cp], position_ids=b.pos[cp])
            cols = b.label_cols[cp] - 1  # (R, A) the positions predicting each answer token
            h_ans = h.last_hidden_state[crow[:, None], cols]  # (R, A, d)
            logp = torch.log_softmax(head(h_ans).float(), dim=-1).gather(2, b.labels[cp][..., None])[..., 0]
            joint = (logp * b.answer_mask[cp]).sum(1)  # (R,) log P(old answer)
            (grad,) = torch.autograd.grad(joint.sum(), scaled)  # rows are independent
        grad = grad.double() * joint.detach().double().exp()[:, None]  # dP/dw = P * dlog P/dw
        grad_sum.index_put_((cp, cl), grad, accumulate=True)
    return base.double() * grad_sum / steps, base.double()


def select_neurons(attr: torch.Tensor, layers: Sequence[int], *, threshold: float, p: float) -> list[Neuron]:
    """Knowledge neurons from attributions (n_prompts, n_layers, d_m): coarse per prompt, then shared.

    Coarse: Attr > threshold * max(Attr of that prompt) (none when that maximum is <= 0). Shared: coarse
    for at least p * n_prompts prompts. Returned sorted as (layer, neuron) pairs.
    """
    top = attr.flatten(1).max(dim=1).values  # (P,)
    coarse = (attr > threshold * top[:, None, None]) & (top > 0)[:, None, None]  # (P, L, d_m)
    counts = coarse.sum(0)  # (L, d_m)
    keep = (counts >= p * attr.shape[0]) & (counts > 0)
    return [(layers[int(li)], int(ni)) for li, ni in keep.nonzero().tolist()]


def _old_answers(model, tok, request: EditRequest, prompts: list[str], n_target: int, hp: KNHyperParams):
    if hp.old_answer == "ground_truth" and request.ground_truth:
        return [encode_answer(tok, p, request.ground_truth) for p in prompts]
    if hp.old_answer == "ground_truth":
        log.info(
            "case %s has no ground truth: KN uses the model's prediction as the old answer", request.case_id
        )
    gens = greedy_generate(model, tok, prompts, max_new_tokens=n_target)
    out = []
    for p, g in zip(prompts, gens, strict=True):
        prompt_ids = list(tok(p)["input_ids"])
        answer = list(g.token_ids) or [int(tok.eos_token_id)]
        out.append(EncodedAnswer(tuple(prompt_ids + answer), len(prompt_ids), len(prompt_ids) + len(answer)))
    return out


def _reduce(emb: torch.Tensor, how: str) -> torch.Tensor:
    return {"sum": emb.sum(0), "mean": emb.mean(0), "first": emb[0]}[how]


def update_value_vectors(
    model: nn.Module,
    neurons: Sequence[Neuron],
    old_ids: Sequence[int],
    new_ids: Sequence[int],
    hp: KNHyperParams,
    signs: Sequence[float] | None = None,
) -> None:
    """Paper §5, in place: v_i <- v_i + sign_i (lambda2 s_new e(new) - lambda1 s_old e(old)) per neuron.

    `signs` (one per neuron, default all +1) orients each update by the neuron's activation sign.
    """
    table = (
        model.get_input_embeddings() if hp.embedding == "input" else model.get_output_embeddings()
    ).weight
    e_old = _reduce(table[list(old_ids)].detach().float(), hp.token_reduce)
    e_new = _reduce(table[list(new_ids)].detach().float(), hp.token_reduce)
    sign_of = dict(zip(neurons, signs if signs is not None else [1.0] * len(neurons), strict=True))
    arch = get_arch(model)
    for layer in sorted({n[0] for n in neurons}):
        cols = [i for lay, i in neurons if lay == layer]
        idx = torch.tensor(cols, device=table.device)
        sgn = torch.tensor([sign_of[(layer, i)] for i in cols], device=table.device)  # (k,)
        w = weight_view(model, arch.mlp_out_name(layer))  # (d_out, d_m)
        with torch.no_grad():
            v = w[:, idx].float()  # (d, k)
            norm = v.norm(dim=0) if hp.scale == "value_norm" else None
            s_old = norm / e_old.norm() if norm is not None else torch.ones_like(sgn)
            s_new = norm / e_new.norm() if norm is not None else torch.ones_like(sgn)
            delta = hp.lambda2 * e_new[:, None] * s_new[None] - hp.lambda1 * e_old[:, None] * s_old[None]
            w[:, idx] = (v + delta * sgn[None]).to(w.dtype)


def kn_neurons(
    model: nn.Module, tok, request: EditRequest, hp: KNHyperParams
) -> tuple[list[Neuron], list[float], EncodedAnswer]:
    """(knowledge neurons of the request's old fact, their activation signs at the edit prompt (+1 when
    `hp.signed` is off), the edit prompt's encoded old answer)."""
    prompts = [request.prompt, *(request.rephrases if hp.use_rephrases else ())]
    new = encode_answer(tok, request.prompt, request.target_new)
    answers = _old_answers(model, tok, request, prompts, new.end - new.start, hp)
    layers = kn_layers(model, hp)
    with train_only(model, []):
        attr, acts = integrated_gradients(
            model, tok, answers, layers, steps=hp.steps, batch_size=hp.ig_batch_size
        )
    neurons = select_neurons(attr, layers, threshold=hp.adaptive_threshold, p=hp.p)
    signs = [float(acts[0, layers.index(lay), i].sign()) if hp.signed else 1.0 for lay, i in neurons]
    return neurons, signs, answers[0]


def apply_kn(model: nn.Module, tok, requests: Sequence[EditRequest], hp: KNHyperParams) -> Undo:
    """Edit each request's knowledge neurons in place (in order); return the `Undo` of the W_out weights.

    Invariant: only the MLP output projection weights of `kn_layers(model, hp)` change, and only in the
    columns of the selected neurons. On an exception the model is restored first.
    """
    if not requests:
        raise ValueError("no requests to edit")
    names = [f"{resolve_module_name(model, None, layer)}.weight" for layer in kn_layers(model, hp)]
    undo = snapshot_parameters(model, names, description=f"KN on {len(requests)} request(s)")
    try:
        for r in requests:
            neurons, signs, old = kn_neurons(model, tok, r, hp)
            new = encode_answer(tok, r.prompt, r.target_new)
            log.debug("KN %s: %d neuron(s) %s", r.case_id, len(neurons), neurons[:10])
            if not neurons:
                log.info("KN %s: no knowledge neuron passed the thresholds; nothing edited", r.case_id)
                continue
            old_ids, new_ids = old.input_ids[old.start : old.end], new.input_ids[new.start : new.end]
            update_value_vectors(model, neurons, old_ids, new_ids, hp, signs)
    except BaseException:
        undo()
        raise
    return undo
