"""Training summaries: a per-level table from ``metrics.csv`` and a loss plot."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from rich.table import Table

from hjepa.io import atomic_path
from hjepa.stack import HJEPA, count_parameters

MAP_NOTE = ("dim of a map level (gridmap) is channels x width x height: its state is a map of cell codes, "
            "not a vector of the config's `dim`.")
"""The footnote of every table that shows a map level's ``dim``."""
FIGURES = ("pred_rel_copy", "nn_acc", "std_mean", "eff_rank", "step_ratio")
SHORT = {"pred_rel_copy": "err/copy", "nn_acc": "NN acc", "std_mean": "std", "eff_rank": "rank", "step_ratio": "step/norm"}


def read_metrics(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``metrics.csv`` as ``{column: [(step, value), ...]}`` (empty cells skipped)."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            step = int(float(row.get("step") or 0))
            for key, value in row.items():
                if key == "step" or value in ("", None):
                    continue
                series.setdefault(key, []).append((step, float(value)))
    return series


def level_summary(stack: HJEPA, metrics: dict[str, list[tuple[int, float]]]) -> list[dict[str, float | int | str]]:
    """One row per level: timescale, size, first/last prediction error (in units of the
    targets' spread, ``pred_norm``), health at the end."""
    rows = []
    for k, level in enumerate(stack.levels):
        pred = metrics.get(f"level{k}/pred_norm", [])
        row: dict[str, float | int | str] = {
            "level": k,
            "kind": level.kind,
            "tau": level.spec.tau,
            "dim": level.dim,
            "map": map_label(level),
            "params": count_parameters(level),
            "pred_first": pred[0][1] if pred else math.nan,
            "pred_last": _tail_mean(pred),
        }
        for fig in FIGURES:
            series = metrics.get(f"val/level{k}/{fig}") or metrics.get(f"level{k}/{fig}", [])
            row[fig] = series[-1][1] if series else math.nan
        rows.append(row)
    return rows


def map_label(level: object) -> str:
    """``"4x19x19"`` (channels x width x height) for a level whose state is a map, else ""."""
    shape = getattr(level, "map_shape", None)
    return "x".join(str(n) for n in shape) if shape else ""


def dim_cell(row: dict) -> str:
    """A table's ``dim`` cell: ``1444 (4x19x19)`` for a map level (see :data:`MAP_NOTE`)."""
    return f"{row['dim']} ({row['map']})" if row.get("map") else str(row["dim"])


def _tail_mean(series: list[tuple[int, float]], n: int = 5) -> float:
    tail = [v for _, v in series[-n:]]
    return sum(tail) / len(tail) if tail else math.nan


def summary_table(rows: list[dict[str, float | int | str]], title: str = "Training summary") -> Table:
    """A rich table of :func:`level_summary` rows."""
    table = Table(title=title, caption=MAP_NOTE if any(r.get("map") for r in rows) else None)
    for col in ("level", "kind", "tau", "dim", "params", "pred err", *SHORT.values()):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["level"]), str(r["kind"]), str(r["tau"]), dim_cell(r), f"{r['params']:,}",
            f"{r['pred_first']:.3g}->{r['pred_last']:.3g}", *(f"{float(r[f]):.3g}" for f in FIGURES),
        )  # fmt: skip
    return table


def plot_losses(metrics: dict[str, list[tuple[int, float]]], num_levels: int, path: str | Path) -> Path:
    """Per-level prediction loss against step (log scale), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for k in range(num_levels):
        for ax, term in zip(axes, ("pred_norm", "nn_acc")):
            series = metrics.get(f"level{k}/{term}", [])
            if series:
                ax.plot(*zip(*series), label=f"level {k}")
    axes[0].set(title="one-step prediction error / target spread", xlabel="step", yscale="log")
    axes[1].set(title="one-step nearest-neighbour accuracy", xlabel="step", ylim=(0, 1))
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:  # no series logged yet (a very short run): no legend
            ax.legend()
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
