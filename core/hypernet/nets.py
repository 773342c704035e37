"""The MEND gradient-transform network g (MEND §3.1, Eq. 3a/3b; App. C), batched over tokens.

For one edited weight the fine-tuning gradient is sum_t delta_t u_t^T. `GradientTransform` maps each
token's factors (u_t, delta_t) to (u~_t, delta~_t):

1. standardise u and delta with running means and variances (`RunningStats`, updated only in training
   mode; MEND's per-token Welford loop replaced by Chan's batched merge, the same numbers);
2. pass z = [u; delta] (`combine`) through `IDMLP`, whose layers compute
       h = z + max(0, s_l * (U V z + b) + o_l)                      (MEND Eq. 3a/3b)
   with U (d, r) zero-initialised, so the map starts as the identity; s_l, o_l are the per-layer
   scale and shift of the weight's index l within a shared-by-shape network (`n_modes` weights);
   `clamp(min=0)` keeps a gradient at exactly 0, which `relu` would not (MEND's `LRLinear`);
3. split the output back into u~ (d_in) and delta~ (d_out).

Without statistics yet (fewer than 2 tokens seen) the standardisation is the identity: an untrained
editor then returns the raw factors, and the pseudo-gradient is the true gradient.
"""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-7  # MEND: (x - mean) / (std + 1e-7)


class RunningStats(nn.Module):
    """Running count, mean and sum of squared deviations of (N, d) samples (float64 buffers)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(dim, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the rows of `x` (N, d) into the statistics (Chan et al.'s parallel variance update)."""
        if x.shape[0] == 0:
            return
        x = x.detach().to(torch.float64)
        n_b = float(x.shape[0])
        mean_b = x.mean(0)
        m2_b = ((x - mean_b) ** 2).sum(0)
        n_a = self.count.clone()
        n = n_a + n_b
        diff = mean_b - self.mean
        self.mean += diff * (n_b / n)
        self.m2 += m2_b + diff**2 * (n_a * n_b / n)
        self.count.fill_(n)

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / (std + 1e-7) with the unbiased std; the identity before 2 samples were seen."""
        if self.count < 2:
            return x
        std = (self.m2 / (self.count - 1)).sqrt()
        return (x - self.mean.to(x.dtype)) / (std.to(x.dtype) + EPS)


class LRLinear(nn.Module):
    """One residual low-rank layer: x + clamp(s_mode * (U V x + b) + o_mode, min=0); identity at init."""

    def __init__(self, dim: int, rank: int, n_modes: int | None) -> None:
        super().__init__()
        mid = min(rank, dim)
        self.u = nn.Parameter(torch.zeros(dim, mid))  # zero: the layer starts as the identity
        self.v = nn.Parameter(torch.randn(mid, dim))  # MEND LRLinear init="id": standard normal
        self.bias = nn.Parameter(torch.zeros(dim))
        self.n_modes = n_modes
        if n_modes is not None:
            self.mode_scale = nn.Parameter(torch.ones(n_modes, dim))
            self.mode_shift = nn.Parameter(torch.zeros(n_modes, dim))

    def forward(self, x: torch.Tensor, mode: int | None = None) -> torch.Tensor:
        pre = (x @ self.v.T) @ self.u.T + self.bias  # (N, dim)
        if mode is not None:
            if self.n_modes is None or not 0 <= mode < self.n_modes:
                raise IndexError(f"mode {mode} out of range for a layer with n_modes={self.n_modes}")
            pre = pre * self.mode_scale[mode] + self.mode_shift[mode]
        return x + pre.clamp(min=0)


class IDMLP(nn.Module):
    """`n_hidden + 1` residual low-rank layers of width `dim` (MEND's IDMLP); the identity at init."""

    def __init__(self, dim: int, rank: int, n_hidden: int, n_modes: int | None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(LRLinear(dim, rank, n_modes) for _ in range(n_hidden + 1))

    def forward(self, x: torch.Tensor, mode: int | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mode)
        return x


class GradientTransform(nn.Module):
    """Maps per-token factors (u (N, d_in), delta (N, d_out)) to (u~, delta~) of the same shapes."""

    def __init__(
        self, d_in: int, d_out: int, *, rank: int, n_hidden: int, combine: bool, norm: bool,
        n_modes: int | None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.d_in, self.d_out, self.combine, self.norm = d_in, d_out, combine, norm
        self.u_stats, self.delta_stats = RunningStats(d_in), RunningStats(d_out)
        if combine:
            self.mlp = IDMLP(d_in + d_out, rank, n_hidden, n_modes)
        else:
            self.mlp_u = IDMLP(d_in, rank, n_hidden, n_modes)
            self.mlp_delta = IDMLP(d_out, rank, n_hidden, n_modes)

    def forward(
        self, u: torch.Tensor, delta: torch.Tensor, mode: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if u.shape[-1] != self.d_in or delta.shape[-1] != self.d_out or u.shape[0] != delta.shape[0]:
            raise ValueError(
                f"factor shapes {tuple(u.shape)}, {tuple(delta.shape)} do not fit ({self.d_in}, {self.d_out})"
            )
        u, delta = u.float(), delta.float()
        if self.training:
            self.u_stats.update(u)
            self.delta_stats.update(delta)
        if self.norm:
            u, delta = self.u_stats.standardize(u), self.delta_stats.standardize(delta)
        if self.combine:
            out = self.mlp(torch.cat([u, delta], dim=-1), mode)
            return out[:, : self.d_in], out[:, self.d_in :]
        return self.mlp_u(u, mode), self.mlp_delta(delta, mode)
