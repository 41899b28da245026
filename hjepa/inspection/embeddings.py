"""Embedding health per level: per-dimension spread, effective rank, and a 2-D projection of
the states coloured by the agent's true position and heading (does the level encode where
the agent is?), with the held-out R^2 of a linear read-out of the position."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from hjepa import diagnostics
from hjepa.config import RegularizerConfig
from hjepa.inspection.source import StateBank, pca_2d


class EmbeddingView(NamedTuple):
    """One level's online states over the distinct observations of a bank."""

    level: int
    std: np.ndarray  # "d" per-dimension std
    eff_rank: float
    dim: int
    projection: np.ndarray  # "n 2" on the two principal axes
    explained: np.ndarray  # "2" share of the variance of each axis
    pose: np.ndarray  # "n 3" (x, y, dir), -1 where unknown
    position_r2: float  # held-out R^2 of a linear (ridge) read-out of (x, y) from the states

    @property
    def std_min(self) -> float:
        return float(self.std.min())


def embedding_view(bank: StateBank, level: int, seed: int = 0) -> EmbeddingView:
    """Health figures and PCA of ``bank.states[level]`` (online states of distinct observations)."""
    z = bank.states[level]
    health = diagnostics.embedding_health(z)
    proj, share = pca_2d(z)
    known = bank.pose[:, 0] >= 0
    r2 = linear_r2(z.numpy()[known], bank.pose[known, :2].astype(float), seed)
    return EmbeddingView(level, z.std(dim=0).numpy(), float(health["eff_rank"]), z.shape[1], proj, share,
                         bank.pose, r2)  # fmt: skip


def linear_r2(x: np.ndarray, y: np.ndarray, seed: int = 0, train: float = 0.7, ridge: float = 1e-3) -> float:
    """Held-out R^2 (mean over the columns of ``y: "n c"``) of a linear read-out from
    ``x: "n d"``, fitted by ridge regression (in its dual form, so ``d`` may exceed the number
    of rows) on a seeded ``train`` share of the rows; NaN with too few rows."""
    n = len(x)
    if n < 10:
        return float("nan")
    perm = np.random.default_rng(seed).permutation(n)
    fit, test = perm[: int(n * train)], perm[int(n * train) :]
    a = np.concatenate([x, np.ones((n, 1))], axis=1).astype(np.float64)
    gram = a[fit] @ a[fit].T
    lam = ridge * np.trace(gram) / len(fit)
    w = a[fit].T @ np.linalg.solve(gram + lam * np.eye(len(fit)), y[fit] - y[fit].mean(axis=0))
    pred = a[test] @ w + y[fit].mean(axis=0)
    resid = ((pred - y[test]) ** 2).sum(axis=0)
    total = ((y[test] - y[test].mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - resid / np.maximum(total, 1e-12)))


def regularizer_reference(reg: RegularizerConfig | None) -> str | None:
    """The label of the std the training regulariser asks for (at 1), or None when none does."""
    if reg is None or reg.weight <= 0:
        return None
    if reg.kind == "vicreg" and reg.var_weight > 0:
        per = " within a layout" if reg.by_layout else ""
        return f"VICReg hinge: std >= 1 over training batches{per} (not over these observations)"
    if reg.kind == "sigreg":
        return "SIGReg: unit-Gaussian projections over training batches"
    return None


def plot_embeddings(view: EmbeddingView, regularizer: RegularizerConfig | None = None) -> Figure:
    """Four panels: sorted per-dimension std (with the std the training regulariser asks for);
    the PCA of the states coloured by true x, by true y and by heading."""
    fig = Figure(figsize=(17, 4))
    ax_std, *axes = fig.subplots(1, 4)
    ax_std.bar(np.arange(view.dim), np.sort(view.std)[::-1], color="tab:blue", label="std over the distinct observations")
    reference = regularizer_reference(regularizer)
    if reference:
        ax_std.axhline(1.0, color="grey", linestyle="--", linewidth=1, label=reference)
    ax_std.set(title=f"per-dimension std (min {view.std_min:.3f}); effective rank {view.eff_rank:.1f} of {view.dim}",
               xlabel="dimension (sorted)", ylabel="std")  # fmt: skip
    ax_std.title.set_fontsize("small")
    ax_std.legend(fontsize="small")
    known = view.pose[:, 0] >= 0
    for ax, c, name, cmap in zip(axes, (0, 1, 2), ("x", "y", "heading"), ("viridis", "viridis", "tab10")):
        colour = view.pose[known, c]
        pts = ax.scatter(view.projection[known, 0], view.projection[known, 1], c=colour, s=6, cmap=cmap,
                         **({"vmin": -0.5, "vmax": 9.5} if c == 2 else {}))  # fmt: skip
        bar = fig.colorbar(pts, ax=ax, label=f"true {name}" + (" (0 east, 1 south, 2 west, 3 north)" if c == 2 else " (cell)"))
        if c == 2:
            bar.set_ticks(range(4))
            bar.ax.set_ylim(-0.5, 3.5)
        ax.set(title=f"PCA coloured by true {name}", xlabel=f"PC1 ({view.explained[0]:.0%} of variance)",
               ylabel=f"PC2 ({view.explained[1]:.0%})")  # fmt: skip
    fig.suptitle(f"level {view.level}: {len(view.pose)} distinct observations; linear read-out of (x, y) from the "
                 f"state: held-out R\u00b2 = {view.position_r2:.2f}")  # fmt: skip
    return fig
