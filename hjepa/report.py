"""Summaries in tables: per-level training figures from ``metrics.csv`` and a loss plot; the
agents of ``results.json`` files as Markdown (``report.md``, ``hjepa report``)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from rich.table import Table

from hjepa.errors import ResultsError
from hjepa.io import atomic_path
from hjepa.readiness import warnings_md, warnings_of
from hjepa.stack import HJEPA, count_parameters

MAP_NOTE = ("dim of a map level (gridmap) is channels x width x height: its state is a map of cell codes, "
            "not a vector of the config's `dim`.")
"""The footnote of every table that shows a map level's ``dim``."""
FIGURES = ("pred_rel_copy", "nn_acc", "snap_acc", "std_mean", "eff_rank", "step_ratio")
SHORT = {"pred_rel_copy": "err/copy", "nn_acc": "NN acc", "snap_acc": "snap acc", "std_mean": "std", "eff_rank": "rank",
         "step_ratio": "step/norm"}  # fmt: skip


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


# ----------------------------------------------------------------------------- results.json
RESULTS_PLACES = ("results.json", "eval/results.json")
"""Where a run folder holds its ``results.json``: ``hjepa bench`` and ``hjepa evaluate`` write
it at the top, ``hjepa run`` under ``eval/``."""


def find_results(path: str | Path) -> Path:
    """The ``results.json`` of ``path``: the file itself, or the first of :data:`RESULTS_PLACES`
    inside a run folder. :class:`ResultsError` when there is none."""
    path = Path(path)
    if path.is_file():
        return path
    for place in RESULTS_PLACES:
        if (path / place).is_file():
            return path / place
    raise ResultsError(f"No results.json at '{path}' (looked for {', '.join(RESULTS_PLACES)} inside it). "
                       "Give a run folder of `hjepa bench`, `hjepa evaluate` or `hjepa run`, or a results.json file.")  # fmt: skip


def read_results(path: str | Path) -> dict[str, Any]:
    """The checked ``results.json`` document of ``path`` (a file or a run folder)."""
    from hjepa.metrics import validate_results

    file = find_results(path)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
        validate_results(doc)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise ResultsError(f"'{file}' is not a readable results.json: {exc}") from exc
    if not doc["agents"]:
        raise ResultsError(f"'{file}' holds no agents: nothing to report.")
    return doc


def _ms(entry: dict[str, Any], key: str) -> str:
    return f"{entry[key]:.2f}" if key in entry else "-"


def agents_table_md(doc: dict[str, Any]) -> list[str]:
    """The agents of a ``results.json`` side by side, as Markdown table lines: success with its
    95% Wilson interval, SPL, success / SPL per distance bin, predictor calls per env step and
    planning time per env step (mean where recorded, median, p95)."""
    bins = list(next(iter(doc["agents"].values()))["by_distance"])
    head = ["agent", "episodes", "success (95% CI)", "SPL", *(f"{b} success / SPL" for b in bins),
            "calls/step", "ms/step mean", "median", "p95"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, a in doc["agents"].items():
        lo, hi = a["success_ci95"]
        cells = [name, str(a["episodes"]), f"{a['success']:.2f} ({lo:.2f}-{hi:.2f})", f"{a['spl']:.2f}"]
        cells += [f"{a['by_distance'][b]['success']:.2f} / {a['by_distance'][b]['spl']:.2f}" for b in bins]
        cells += [f"{a['predictor_calls_per_step']:.0f}", _ms(a, "plan_ms_mean"), _ms(a, "plan_ms_median"),
                  _ms(a, "plan_ms_p95")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def run_lines(doc: dict[str, Any], source: str) -> list[str]:
    """What produced a ``results.json``: its folder, the command, seed, device, training figures."""
    t = doc["train"]
    kind = "quick" if doc["quick"] else "full"
    lines = [f"Run `{source}` ({kind}): seed {doc['seed']}, {doc['levels']} level(s), device {doc['device']}."]
    if doc.get("command"):
        lines.append(f"Command: `{doc['command']}`.")
    if t["steps"]:
        lines.append(f"Training: {t['steps']} steps in {t['wall_s']:.0f} s, {t['samples_per_s']:.0f} samples/s, "
                     f"peak memory {t['peak_mem_mb']:.0f} MB.")  # fmt: skip
    else:
        lines.append("Training: not in this run (a checkpoint evaluated by `hjepa evaluate`).")
    return [" ".join(lines)]


def warning_lines(doc: dict[str, Any]) -> list[str]:
    """The readiness warnings of a ``results.json`` (:mod:`hjepa.readiness`) as Markdown bullets,
    then a blank line; no lines when it has none."""
    return warnings_md(warnings_of(doc), heading=None, prefix="Warning: ")


def report_markdown(runs: list[tuple[str, dict[str, Any]]], heading: str = "##") -> str:
    """One Markdown section per suite (in order of first appearance), each run of that suite
    under it: where it came from (:func:`run_lines`) and its agents (:func:`agents_table_md`).

    Args:
        runs: ``(source, results.json document)`` pairs, e.g. from :func:`read_results`.
        heading: the Markdown heading of a suite's section.
    """
    suites: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for source, doc in runs:
        suites.setdefault(doc["suite"], []).append((source, doc))
    lines: list[str] = []
    for suite, members in suites.items():
        lines += [f"{heading} {suite}", ""]
        for source, doc in members:
            lines += [*run_lines(doc, source), "", *agents_table_md(doc), "", *warning_lines(doc)]
    return "\n".join(lines)
