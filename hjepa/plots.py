"""Benchmark figures: success and SPL by distance bin per agent, prediction error by horizon.

Figures are built with ``matplotlib.figure.Figure`` (rendered by Agg) rather than pyplot, so
plotting never touches a global backend or leaks figures, and works without a display. PNGs
are written atomically: a reader never sees half a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hjepa.io import atomic_path
from hjepa.metrics import wilson_interval


def _save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG to a temporary name beside ``path``, then rename it onto ``path``."""
    path = Path(path)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def save_figure(fig: Figure, path: str | Path, tight: bool = True) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (100 dpi; ``tight``: tight layout first,
    off for figures placed by hand); returns ``path``."""
    if tight:
        return _save(fig, path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)


def _bins_of(agents: dict[str, dict[str, Any]]) -> list[str]:
    """The distance bins of all agents, in order of first appearance."""
    return list(dict.fromkeys(b for entry in agents.values() for b in entry.get("by_distance", {})))


def _success_error(cells: Sequence[dict[str, Any]]) -> np.ndarray:
    """``(2, n)`` distances from each success rate down and up to its 95% Wilson bounds."""
    err = np.zeros((2, len(cells)))
    for i, cell in enumerate(cells):
        n, rate = int(cell["episodes"]), float(cell["success"])
        if n > 0:  # no error bar without episodes: the interval would be all of [0, 1]
            lo, hi = wilson_interval(round(rate * n), n)
            err[:, i] = max(rate - lo, 0.0), max(hi - rate, 0.0)
    return err


def plot_success_by_bin(doc: dict[str, Any], path: str | Path) -> Path:
    """Two panels, success (with 95% Wilson bars) and SPL per distance bin, a bar per agent.

    Args:
        doc: a ``results.json`` document (:func:`hjepa.metrics.results_document`).
        path: where the PNG goes.

    Returns:
        ``path``.
    """
    agents = {name: entry for name, entry in doc["agents"].items() if entry.get("by_distance")}
    bins = _bins_of(agents)
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    x, width = np.arange(len(bins)), 0.8 / max(1, len(agents))
    for i, (name, entry) in enumerate(agents.items()):
        empty = {"episodes": 0, "success": 0.0, "spl": 0.0}
        cells = [entry["by_distance"].get(b, empty) for b in bins]
        offset = x - 0.4 + width * (i + 0.5)
        axes[0].bar(offset, [c["success"] for c in cells], width, yerr=_success_error(cells), capsize=3, label=name)
        axes[1].bar(offset, [c["spl"] for c in cells], width, label=name)
    fig.suptitle(f"{doc.get('suite', '')}: by oracle distance")
    for ax, what in zip(axes, ("success rate (95% Wilson)", "SPL")):
        ax.set(title=what, ylim=(0, 1.05), xlabel="distance bin")
        ax.set_xticks(x, bins)
        if agents:
            ax.legend(fontsize="small")
    return _save(fig, path)


def plot_pred_error_by_horizon(levels_report: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Prediction error against horizon, one line per level.

    The horizon is counted in each level's own steps (``tau`` environment steps each), so a
    line labelled ``tau=4`` at horizon 3 predicts 12 environment steps ahead.

    Args:
        levels_report: ``results.json["levels_report"]`` rows (``level``, ``tau``,
            ``pred_error_by_horizon``).
        path: where the PNG goes.

    Returns:
        ``path``.
    """
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for row in levels_report:
        errors = list(row["pred_error_by_horizon"])
        horizons = np.arange(1, len(errors) + 1)
        ax.plot(horizons, errors, marker="o", label=f"level {row['level']} (tau={row['tau']})")
    ax.set(title="prediction error by horizon", xlabel="horizon (steps of that level)", ylabel="prediction error")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if levels_report:
        ax.legend(fontsize="small")
    return _save(fig, path)


COMPUTE_AGENTS = ("hjepa", "flat-unbounded", "flat")
"""The planning agents whose compute :func:`plot_compute_by_distance` draws."""


def plot_compute_by_distance(records: Sequence[Any], path: str | Path) -> Path | None:
    """Predictor calls per episode (whole-map level-0 units, log scale) against the oracle's
    distance, one series per planning agent (None when no episode has any)."""
    series = {a: [(r.oracle_len, r.predictor_calls) for r in records if r.agent == a] for a in COMPUTE_AGENTS}
    series = {a: pts for a, pts in series.items() if pts}
    if not series:
        return None
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for name, pts in series.items():
        x, y = np.array(pts, dtype=np.float64).T
        ax.scatter(x, np.maximum(y, 1e-3), s=12, label=name, alpha=0.7)
    ax.set_yscale("log")
    ax.set_xlabel("oracle distance (actions)")
    ax.set_ylabel("predictor calls per episode (whole-map units)")
    ax.legend()
    return _save(fig, path)
