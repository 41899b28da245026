"""End-to-end runs: collect (unless the run folder already holds the same data), train, report."""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from rich.console import Console
from rich.markup import escape

from hjepa.checkpoint import load_module
from hjepa.config import ExperimentConfig, dump_yaml, to_dict
from hjepa.data.collect import collect
from hjepa.data.storage import OfflineDataset
from hjepa.errors import DatasetError
from hjepa.fit import TrainResult, fit
from hjepa.io import write_text
from hjepa.logs import make_console
from hjepa.readiness import ReadinessWarning, readiness_warnings, warnings_md
from hjepa.report import MAP_NOTE, dim_cell, level_summary, plot_losses, read_metrics, summary_table


@dataclass(frozen=True)
class RunResult:
    """Paths and figures of an end-to-end run."""

    out: Path
    train: TrainResult
    collect_s: float
    levels: list[dict]


def ensure_data(cfg: ExperimentConfig, out: Path, console: Console) -> tuple[Path, float]:
    """Collect ``cfg.data`` into ``out/data`` unless an identical dataset is already there."""
    data_dir = out / "data"
    if data_dir.exists():
        try:
            ds = OfflineDataset.open(data_dir)
            # A dataset that records no held_out was held out by seed alone: collect it again.
            held_out_ok = bool(ds.meta.held_out) or not cfg.data.exclude_layout_seeds
            if ds.meta.collector == to_dict(cfg.data) and held_out_ok:
                console.print(f"[dim]Reusing the dataset in {data_dir} ({ds.num_transitions:,} transitions).[/dim]")
                return data_dir, 0.0
        except DatasetError:
            pass  # half-written or stale: collect again
    t0 = time.perf_counter()
    collect(cfg.data, data_dir, progress=console.is_terminal)
    return data_dir, time.perf_counter() - t0


def run_experiment(cfg: ExperimentConfig, out: str | Path, resume: bool = False, console: Console | None = None) -> RunResult:
    """Collect, train and summarise; writes config.yaml, data/, checkpoints/, metrics.csv,
    report.md and plots/ under ``out``."""
    console = console or make_console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.yaml", dump_yaml(cfg))
    data_dir, collect_s = ensure_data(cfg, out, console)
    result = fit(cfg, data_dir, out, resume=resume, progress=console.is_terminal)
    rows = finish_training_report(cfg, out, result, console)
    return RunResult(out, result, collect_s, rows)


def finish_training_report(cfg: ExperimentConfig, out: Path, result: TrainResult, console: Console) -> list[dict]:
    """Print the per-level table, plot the losses and write report.md (global rank 0 only)."""
    if not result.rank_zero:
        return []
    stack = load_module(result.checkpoint).stack
    metrics = read_metrics(result.metrics_csv)
    rows = level_summary(stack, metrics)
    console.print(summary_table(rows, title=f"{cfg.name}: {result.steps} steps in {result.wall_s:.0f} s on {result.device}"))
    console.print(
        f"throughput {result.samples_per_s:,.0f} transitions/s ({result.windows_per_s:,.0f} windows/s), "
        f"peak memory {result.peak_mem_mb:,.0f} MB"
    )
    warnings = readiness_warnings(rows, result.steps)
    print_warnings(console, warnings)
    plot_losses(metrics, stack.num_levels, out / "plots" / "train_losses.png")
    write_text(out / "report.md", training_report_md(cfg, result, rows, warnings))
    return rows


def checkpoint_warnings(stack: torch.nn.Module, ckpt: str | Path) -> list[ReadinessWarning] | None:
    """The readiness warnings of a checkpoint's training, from the ``metrics.csv`` of its run
    folder (``RUN/checkpoints/X.ckpt`` or ``RUN``); None when that folder holds none."""
    path = Path(ckpt)
    found = [p for p in (path / "metrics.csv", path.parent.parent / "metrics.csv") if p.is_file()]
    if not found:
        return None
    metrics = read_metrics(found[0])
    steps = max((int(step) for series in metrics.values() for step, _ in series), default=0)
    return readiness_warnings(level_summary(stack, metrics), steps)


def print_warnings(console: Console, warnings: Sequence[ReadinessWarning]) -> None:
    """The readiness warnings (:mod:`hjepa.readiness`) as yellow lines."""
    for w in warnings:
        console.print(f"[yellow]warning: {escape(w.message)}[/yellow]")


def training_report_md(cfg: ExperimentConfig, result: TrainResult, rows: list[dict],
                       warnings: Sequence[ReadinessWarning] = ()) -> str:  # fmt: skip
    """``report.md`` of a training run: the command, the figures, the per-level table and, when
    level 0 cannot plan yet, a "Warnings" section (:func:`~hjepa.readiness.readiness_warnings`)."""
    cmd = " ".join(shlex.quote(a) for a in ["hjepa", *sys.argv[1:]])
    lines = [
        f"# {cfg.name}",
        "",
        f"Produced by: `{cmd}`",
        "",
        f"Training: {result.steps} steps, {result.wall_s:.1f} s on {result.device}, "
        f"{result.samples_per_s:,.0f} transitions/s, peak memory {result.peak_mem_mb:,.0f} MB.",
        "",
        "Prediction error is the one-step MSE over the targets' per-dimension variance (`pred_norm`); "
        "pred/copy is the error relative to copying the last state (< 1: better than copying); NN acc is the "
        "fraction of predictions that land nearest to their true next state within a batch.",
        "",
        "| level | kind | tau | dim | params | pred err first | pred err last | pred/copy | NN acc | std | eff. rank | step/norm |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['level']} | {r['kind']} | {r['tau']} | {dim_cell(r)} | {r['params']:,} | {r['pred_first']:.4f} | "
            f"{r['pred_last']:.4f} | {r['pred_rel_copy']:.3f} | {r['nn_acc']:.3f} | {r['std_mean']:.3f} | "
            f"{r['eff_rank']:.1f} | {r['step_ratio']:.3f} |"
        )
    lines += ["", MAP_NOTE] if any(r.get("map") for r in rows) else []
    lines += ["", *warnings_md(warnings)] if warnings else []
    lines += ["", "![losses](plots/train_losses.png)", ""]
    return "\n".join(lines)
