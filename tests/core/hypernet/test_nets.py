"""MEND gradient-transform network: running statistics, identity initialisation, per-layer modes."""

from __future__ import annotations

import torch

from core.hypernet.nets import EPS, IDMLP, GradientTransform, LRLinear, RunningStats


def _welford(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MEND's per-token update_counter loop (the reference the batched merge must equal)."""
    mean, s = rows[0].double().clone(), torch.zeros(rows.shape[1], dtype=torch.float64)
    for k, x in enumerate(rows[1:].double(), start=2):
        new_mean = mean + (x - mean) / k
        s = s + (x - mean) * (x - new_mean)
        mean = new_mean
    return mean, s


def test_running_stats_batched_merge_equals_per_token_welford():
    torch.manual_seed(0)
    rows = torch.randn(37, 5) * 3 + 1
    stats = RunningStats(5)
    for chunk in rows.split([1, 10, 0, 20, 6]):
        stats.update(chunk)
    mean, s = _welford(rows)
    assert stats.count.item() == 37
    torch.testing.assert_close(stats.mean, mean)
    torch.testing.assert_close(stats.m2, s)
    expected = (rows - rows.mean(0)) / (rows.std(0) + EPS)  # unbiased std, as MEND
    torch.testing.assert_close(stats.standardize(rows), expected, rtol=1e-5, atol=1e-5)


def test_standardize_is_identity_before_two_samples():
    stats = RunningStats(3)
    x = torch.randn(4, 3)
    assert torch.equal(stats.standardize(x), x)
    stats.update(x[:1])
    assert torch.equal(stats.standardize(x), x)
    stats.update(x[1:2])
    assert not torch.equal(stats.standardize(x), x)


def test_idmlp_is_identity_at_init_and_trainable_through_the_clamp():
    torch.manual_seed(0)
    mlp = IDMLP(6, rank=4, n_hidden=1, n_modes=2)
    x = torch.randn(9, 6)
    assert torch.equal(mlp(x, 1), x)
    mlp(x, 1).pow(2).sum().backward()
    for layer in mlp.layers:
        assert (
            layer.u.grad is not None and layer.u.grad.abs().sum() > 0
        )  # clamp passes gradient at 0 (relu would not)


def test_mode_scale_and_shift_act_per_mode():
    layer = LRLinear(4, rank=2, n_modes=3)
    with torch.no_grad():
        layer.mode_shift[1] = 1.0
    x = torch.zeros(2, 4)
    assert torch.equal(layer(x, 0), x)
    assert torch.equal(layer(x, 1), torch.ones(2, 4))
    assert layer.v.shape == (2, 4) and layer.u.shape == (4, 2)  # rank capped at min(rank, dim)


def test_gradient_transform_updates_statistics_only_in_training():
    torch.manual_seed(0)
    g = GradientTransform(3, 5, rank=8, n_hidden=1, combine=True, norm=True, n_modes=None)
    u, d = torch.randn(7, 3), torch.randn(7, 5)
    g.eval()
    out_u, out_d = g(u, d)
    assert torch.equal(out_u, u) and torch.equal(out_d, d)  # identity: no statistics, zero-init MLP
    assert g.u_stats.count.item() == 0
    g.train()
    out_u, out_d = g(u, d)
    assert g.u_stats.count.item() == 7 and g.delta_stats.count.item() == 7
    torch.testing.assert_close(out_u, (u - u.mean(0)) / (u.std(0) + EPS), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_d.mean(0), torch.zeros(5), rtol=0, atol=1e-5)


def test_gradient_transform_separate_nets_when_not_combined():
    g = GradientTransform(3, 5, rank=2, n_hidden=0, combine=False, norm=False, n_modes=2)
    assert not hasattr(g, "mlp") and len(g.mlp_u.layers) == 1 and g.mlp_delta.layers[0].u.shape == (5, 2)
    u, d = torch.randn(2, 3), torch.randn(2, 5)
    assert torch.equal(g(u, d, 1)[0], u)
