"""Anti-collapse regularisers: group centring, VICReg, SIGReg, and the registry of kinds.

Every random tensor comes from a seeded generator; thresholds sit far from the measured values
(noted beside each assertion) so that no seed or platform can flip them.
"""

from __future__ import annotations

import pytest
import torch

from hjepa.config import RegularizerConfig
from hjepa.errors import HJEPAError, UnknownNameError
from hjepa.regularizers import SIGReg, VICReg, build_regularizer, center_by_group


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def sigreg_score(z: torch.Tensor, groups: torch.Tensor | None = None, seed: int = 0) -> float:
    """SIGReg draws its random projections from the global RNG: fix it without leaking state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return float(SIGReg()(z, groups)["sigreg"])


# ----------------------------------------------------------------------------- center_by_group


def test_center_by_group_removes_each_group_mean_exactly() -> None:
    z = randn(60, 5) * 3 + 7
    groups = torch.tensor([5, -3, 1000] * 20)  # arbitrary, non-contiguous ids
    zc = center_by_group(z, groups)
    assert zc.shape == z.shape
    for g in groups.unique():
        mask = groups == g
        torch.testing.assert_close(zc[mask], z[mask] - z[mask].mean(0, keepdim=True))
        torch.testing.assert_close(zc[mask].mean(0), torch.zeros(5), atol=1e-5, rtol=0)


def test_center_by_group_unequal_groups_and_singletons() -> None:
    z = randn(7, 3, seed=1)
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    zc = center_by_group(z, groups)
    torch.testing.assert_close(zc[:4], z[:4] - z[:4].mean(0))
    torch.testing.assert_close(zc[4:6], z[4:6] - z[4:6].mean(0))
    torch.testing.assert_close(zc[6], torch.zeros(3))  # a group of one has nothing left


def test_center_by_group_without_groups_is_global_centring() -> None:
    z = randn(50, 4, seed=2) + 3
    torch.testing.assert_close(center_by_group(z, None), z - z.mean(0, keepdim=True))
    # one group holding everything is the same thing
    torch.testing.assert_close(center_by_group(z, torch.zeros(50, dtype=torch.long)), center_by_group(z, None))


def test_center_by_group_is_differentiable() -> None:
    z = randn(12, 3, seed=3).requires_grad_(True)
    center_by_group(z, torch.arange(12) % 3).pow(2).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


# ----------------------------------------------------------------------------- VICReg


def test_vicreg_isotropic_wide_gaussian_pays_nothing() -> None:
    z = 2.0 * randn(4096, 16)  # std 2 > 1 in every dimension, independent dimensions
    terms = VICReg()(z)
    assert set(terms) == {"var", "cov"}
    assert float(terms["var"]) == 0.0  # hinge inactive everywhere
    assert float(terms["cov"]) < 0.05  # measured ~0.002 (sampling noise only)


def test_vicreg_collapsed_embeddings_pay_the_full_variance_weight() -> None:
    z = torch.full((512, 16), 3.0)
    for var_weight in (1.0, 2.5):
        terms = VICReg(var_weight=var_weight)(z)
        # std = sqrt(eps) = 0.01, so the hinge is 0.99 in every dimension
        assert float(terms["var"]) == pytest.approx(var_weight, rel=0.02)
        assert float(terms["cov"]) == pytest.approx(0.0, abs=1e-8)


def test_vicreg_penalises_correlated_dimensions() -> None:
    x = randn(2048, 1, seed=4)
    z = torch.cat([x, x, x, x], dim=1) * 2  # four copies of one signal
    indep = 2 * randn(2048, 4, seed=5)
    assert float(VICReg()(z)["cov"]) > 10 * float(VICReg()(indep)["cov"]) + 0.1  # measured ~1.9 vs ~0.0003


def test_vicreg_gradient_pushes_collapsed_embeddings_apart() -> None:
    z = (0.01 * randn(256, 8, seed=6)).requires_grad_(True)
    VICReg()(z)["var"].backward()
    step = -z.grad  # gradient descent direction
    zc = z.detach() - z.detach().mean(0)
    assert float((step * zc).sum()) > 0  # descent grows the spread


def test_vicreg_layout_trap_groups_see_within_layout_collapse() -> None:
    """The layout trap: a big per-layout offset plus a tiny within-layout signal.

    Batch statistics see plenty of variance (from the layouts) and pay no variance penalty;
    group-wise statistics see that the agent's state barely moves the latent.
    """
    n_layouts, per_layout, d = 64, 32, 16
    groups = torch.arange(n_layouts).repeat_interleave(per_layout)
    offsets = 10.0 * randn(n_layouts, d, seed=7)
    z = offsets[groups] + 0.01 * randn(n_layouts * per_layout, d, seed=8)
    reg = VICReg()
    with_groups, without = reg(z, groups), reg(z)
    assert float(with_groups["var"]) > 0.9  # measured ~0.99: within-layout std ~0.01
    assert float(without["var"]) < 1e-6  # measured 0: the layouts supply all the variance
    # and centring also removes the spurious covariance the layout offsets create
    assert float(with_groups["cov"]) < 1e-3 < 1.0 < float(without["cov"])


def test_vicreg_groups_do_not_change_a_single_layout_batch() -> None:
    z = randn(300, 6, seed=9) * 0.5
    same = torch.full((300,), 42)
    a, b = VICReg()(z, same), VICReg()(z)
    torch.testing.assert_close(a["var"], b["var"])
    torch.testing.assert_close(a["cov"], b["cov"])


# ----------------------------------------------------------------------------- SIGReg


def test_sigreg_standard_normal_scores_far_below_collapsed_and_non_gaussian() -> None:
    n, d = 2048, 16
    normal = sigreg_score(randn(n, d, seed=10))
    collapsed = sigreg_score(torch.full((n, d), 0.5))
    tiny_uniform = sigreg_score(0.1 * torch.rand(n, d, generator=torch.Generator().manual_seed(11)))
    too_wide = sigreg_score(5.0 * randn(n, d, seed=12))
    # measured: normal ~0.01, collapsed ~18, uniform*0.1 ~18, 5 * normal ~37
    assert normal < 0.5
    for bad in (collapsed, tiny_uniform, too_wide):
        assert bad > 20 * normal and bad > 5.0


def test_sigreg_is_centred_by_group() -> None:
    """A per-layout offset costs nothing once statistics are within layouts."""
    groups = torch.arange(32).repeat_interleave(64)
    z = randn(2048, 8, seed=13)
    shifted = z + 10.0 * randn(32, 8, seed=14)[groups]
    s_grouped, s_batch = sigreg_score(shifted, groups), sigreg_score(shifted)
    assert s_grouped < 1.0 < 5.0 < s_batch  # measured ~0.01 vs ~54


def test_sigreg_returns_a_finite_differentiable_scalar() -> None:
    z = randn(128, 8, seed=15).requires_grad_(True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        out = SIGReg(slices=32)(z)
    assert set(out) == {"sigreg"} and out["sigreg"].ndim == 0
    out["sigreg"].backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


# ----------------------------------------------------------------------------- registry


@pytest.mark.parametrize(("kind", "cls"), [("vicreg", VICReg), ("sigreg", SIGReg)])
def test_build_regularizer_by_kind(kind: str, cls: type) -> None:
    reg = build_regularizer(RegularizerConfig(kind=kind, var_weight=2.0, cov_weight=0.5, slices=8))
    assert isinstance(reg, cls)
    if kind == "vicreg":
        assert (reg.var_weight, reg.cov_weight) == (2.0, 0.5)
    else:
        assert reg.slices == 8


def test_build_regularizer_unknown_kind() -> None:
    with pytest.raises(UnknownNameError) as info:
        build_regularizer(RegularizerConfig(kind="barlow"))
    msg = str(info.value)
    assert "barlow" in msg and "vicreg" in msg and "sigreg" in msg
    assert isinstance(info.value, HJEPAError) and isinstance(info.value, KeyError)
    assert not msg.startswith(("'", '"'))  # plain prose, not KeyError's quoted repr
