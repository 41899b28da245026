"""Anti-collapse regularisers for JEPA embeddings: VICReg variance/covariance and SIGReg.

Both take embeddings ``z: "n d"`` and optional integer ``groups: "n"``. With groups, the
statistics are computed on group-centred embeddings: within-layout variance only, so that
differences between layouts cannot supply the variance the regulariser asks for
(batch VICReg over random layouts encoded the layout, not the agent: docs/design-notes.md).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hjepa.config import RegularizerConfig
from hjepa.errors import UnknownNameError, did_you_mean


def center_by_group(z: Tensor, groups: Tensor | None) -> Tensor:
    """Subtract each group's mean. ``z: "n d"``, ``groups: "n"`` (any integers)."""
    if groups is None:
        return z - z.mean(dim=0, keepdim=True)
    _, inverse = torch.unique(groups, return_inverse=True)
    n_groups = int(inverse.max()) + 1
    sums = torch.zeros(n_groups, z.shape[1], dtype=z.dtype, device=z.device).index_add_(0, inverse, z)
    counts = torch.bincount(inverse, minlength=n_groups).clamp_min(1).to(z.dtype)
    return z - (sums / counts[:, None])[inverse]


class VICReg(nn.Module):
    """Variance hinge (per-dimension std >= 1) plus off-diagonal covariance penalty.

    The covariance term costs ``n d^2``; above ``cov_dims`` dimensions (spatial states such as
    the ``gridmap`` kind's ``c * w * h``) it is computed on a fresh random subset of
    ``cov_dims`` dimensions each call, an unbiased estimate of the mean off-diagonal penalty.
    """

    def __init__(self, var_weight: float = 1.0, cov_weight: float = 0.04, eps: float = 1e-4, cov_dims: int = 256) -> None:
        super().__init__()
        self.var_weight, self.cov_weight, self.eps, self.cov_dims = var_weight, cov_weight, eps, cov_dims

    def forward(self, z: Tensor, groups: Tensor | None = None) -> dict[str, Tensor]:
        zc = center_by_group(z.float(), groups)
        n, d = zc.shape
        std = torch.sqrt(zc.pow(2).sum(0) / max(n - 1, 1) + self.eps)
        var = F.relu(1.0 - std).mean()
        if d > self.cov_dims:
            zc = zc[:, torch.randperm(d, device=zc.device)[: self.cov_dims]]
            d = self.cov_dims
        cov = zc.T @ zc / max(n - 1, 1)
        off = cov - torch.diag_embed(torch.diagonal(cov))
        cov_loss = off.pow(2).sum() / d
        return {"var": self.var_weight * var, "cov": self.cov_weight * cov_loss}


class SIGReg(nn.Module):
    """Sketched isotropic Gaussian regulariser (after LeJEPA).

    Projects the embeddings onto ``slices`` random unit directions and measures, for each,
    the Epps-Pulley distance between the empirical characteristic function and that of
    N(0, 1), integrated on a fixed grid of frequencies with a Gaussian weight.
    """

    def __init__(self, slices: int = 256, knots: int = 17, t_max: float = 3.0) -> None:
        super().__init__()
        self.slices = slices
        t = torch.linspace(0.0, t_max, knots)
        weights = torch.full((knots,), t_max / (knots - 1))
        weights[[0, -1]] *= 0.5  # trapezoid rule
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("w", 2.0 * weights * torch.exp(-0.5 * t**2), persistent=False)

    def forward(self, z: Tensor, groups: Tensor | None = None) -> dict[str, Tensor]:
        zc = center_by_group(z.float(), groups)
        n, d = zc.shape
        # A fresh sketch every call (seeded runs stay deterministic through the global RNG).
        dirs = torch.randn(d, self.slices, device=zc.device)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        proj = zc @ dirs  # "n m"
        xt = proj.unsqueeze(-1) * self.t  # "n m k"
        ecf_re, ecf_im = torch.cos(xt).mean(0), torch.sin(xt).mean(0)  # "m k"
        target = torch.exp(-0.5 * self.t**2)
        stat = ((ecf_re - target) ** 2 + ecf_im**2) @ self.w  # "m"
        return {"sigreg": stat.mean() * math.sqrt(n)}


_REGULARIZERS: dict[str, Callable[[RegularizerConfig], nn.Module]] = {
    "vicreg": lambda c: VICReg(c.var_weight, c.cov_weight),
    "sigreg": lambda c: SIGReg(c.slices),
}


def build_regularizer(cfg: RegularizerConfig) -> nn.Module:
    """The regulariser named by ``cfg.kind``."""
    if cfg.kind not in _REGULARIZERS:
        raise UnknownNameError(f"Unknown regularizer '{cfg.kind}'; choose one of {sorted(_REGULARIZERS)}."
                               f"{did_you_mean(cfg.kind, _REGULARIZERS)}")  # fmt: skip
    return _REGULARIZERS[cfg.kind](cfg)
