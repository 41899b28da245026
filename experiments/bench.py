"""Benchmark suites (docs/benchmark.md): train once, evaluate every agent side by side, write
``results.json``, ``report.md`` and plots."""

from __future__ import annotations

import dataclasses
import math
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from rich.console import Console
from rich.table import Table

from hjepa.agents.base import DEFAULT_AGENTS
from hjepa.checkpoint import load_module, read_checkpoint
from hjepa.config import ExperimentConfig, from_dict
from hjepa.data.storage import OfflineDataset
from hjepa.envs.pointmaze import is_pointmaze
from hjepa.envs.tasks import FOURROOMS_BINS, DistanceBins
from hjepa.errors import DatasetError, SpecMismatchError, UnknownNameError, did_you_mean
from hjepa.io import write_json, write_text
from hjepa.logs import make_console
from hjepa.metrics import results_document
from hjepa.planning.configurator import RuleConfigurator
from hjepa.plots import plot_compute_by_distance, plot_pred_error_by_horizon, plot_success_by_bin
from hjepa.probe import levels_report
from hjepa.readiness import readiness_warnings, warnings_md, warnings_of
from hjepa.experiments.block_edges import EdgeFigures, block_edge_figures
from hjepa.report import MAP_NOTE, agents_table_md, dim_cell
from hjepa.experiments import presets
from hjepa.experiments.evaluate import (Budget, EvalConfig, calls_per_decision, evaluate_agents, planning_memory,
                                        suite_tasks)  # fmt: skip
from hjepa.experiments.runner import RunResult, checkpoint_warnings, print_warnings, run_experiment

MAZE_BINS = DistanceBins.from_mapping({"short": (1, 40), "medium": (41, 80), "long": (81, math.inf)})
MAZE8_BINS = DistanceBins.from_mapping({"short": (1, 80), "medium": (81, 160), "long": (161, math.inf)})
MAZE16_BINS = DistanceBins.from_mapping({"short": (1, 150), "medium": (151, 299), "long": (300, math.inf)})
MULTIROOM_BINS = DistanceBins.from_mapping({"short": (1, 15), "medium": (16, 30), "long": (31, math.inf)})
EMPTY_BINS = DistanceBins.from_mapping({"short": (1, 4), "medium": (5, 8), "long": (9, math.inf)})
HELD_OUT_LAYOUTS = presets.HELD_OUT_LAYOUTS
# PointMaze bins are geodesic metres (cells are 1 m; the ball's top speed is 0.05 m per step).
_EPS = 1e-6  # bins are closed on both ends: the next bin starts just above the previous one's end
PM_MEDIUM_BINS = DistanceBins.from_mapping({"short": (0.5, 3), "medium": (3 + _EPS, 6), "long": (6 + _EPS, math.inf)})
PM_LARGE_BINS = DistanceBins.from_mapping({"short": (0.5, 5), "medium": (5 + _EPS, 10), "long": (10 + _EPS, math.inf)})
PM_GIANT_BINS = DistanceBins.from_mapping({"medium": (0.5, 20), "long": (20 + _EPS, math.inf)})


@dataclass(frozen=True)
class Suite:
    """A benchmark suite: the experiment that trains the model and the tasks it is judged on.

    Attributes:
        experiment: preset ``(quick, seed) -> ExperimentConfig``.
        bins: oracle-distance bins, equal task counts in each.
        per_bin: tasks per bin (full run) and ``per_bin_quick`` for ``--quick``.
        max_steps: env steps before an episode fails.
        held_out: evaluate on these layout seeds (held out of the data by content) instead of the training layout.
        flat_horizon: level-0 horizon of the flat agent, in env steps.
        configurator: the hierarchy's configurator for this suite.
        draw: draws the tasks, with :func:`~hjepa.experiments.evaluate.suite_tasks`'s arguments
            (None: that function); ``notes``: what the report should say about the tasks.

    A maze with its own evaluation tasks (OGBench giant) runs those, ``per_bin`` episodes each.
    """

    name: str
    experiment: Callable[..., ExperimentConfig]
    bins: DistanceBins
    per_bin: int
    per_bin_quick: int
    max_steps: int
    held_out: tuple[int, ...] = ()
    flat_horizon: int = 8
    configurator: RuleConfigurator = RuleConfigurator()
    agents: tuple[str, ...] = DEFAULT_AGENTS
    draw: Callable[..., list] | None = None
    notes: str = ""

    def layouts(self, cfg: ExperimentConfig) -> list[int]:
        return list(self.held_out) if self.held_out else [cfg.data.layout_seed]

    def eval_config(self, seed: int, agents: tuple[str, ...] | None = None) -> EvalConfig:
        """The suite's evaluation settings (all agents unless ``agents`` is given)."""
        names = {"agents": agents if agents is not None else self.agents}
        return EvalConfig(max_steps=self.max_steps, flat_horizon=self.flat_horizon, configurator=self.configurator,
                          seed=seed, **names)  # fmt: skip


# PointMaze: level 0 plans forces with Gaussian CEM down level 1's graph field (a snapping
# radius of 3 keeps the field's graph connected with action repeat: docs/design-notes.md); the
# flat agent looks as far ahead on its critic as level 0 does (10 model steps, 50 env steps).
_PM_PLANNING = {"flat_horizon": 10, "configurator": RuleConfigurator(flat_horizon=10, width0=64, judge="top",
                                                                     upper="field", graph_radius=3.0)}  # fmt: skip

# The MiniGrid suites, trained on the family's other layouts: level 0 imagines the evaluated
# layout's graph from the current observation (`--configurator planner=graph` plans on the
# memory of the dataset's observations instead, for a model trained on the evaluated layout).
_IMAGINE = RuleConfigurator(planner="imagine")
_SCALE_AGENTS = ("hjepa", "flat", "flat-unbounded", "random", "oracle")
"""The scale suites also run the flat planner with no cap: the compute ratio at equal success."""


SUITES: dict[str, Suite] = {
    "fourrooms": Suite("fourrooms", presets.fourrooms, FOURROOMS_BINS, 50, 5, 100, configurator=_IMAGINE),
    "fourrooms-random": Suite("fourrooms-random", presets.fourrooms_random, FOURROOMS_BINS, 50, 5, 100,
                              HELD_OUT_LAYOUTS, configurator=_IMAGINE),  # fmt: skip
    "mazerooms": Suite("mazerooms", presets.mazerooms, MAZE_BINS, 30, 6, 400, configurator=_IMAGINE),
    "mazerooms-8": Suite("mazerooms-8", presets.mazerooms_8, MAZE8_BINS, 30, 4, 700, HELD_OUT_LAYOUTS,
                         configurator=_IMAGINE, agents=_SCALE_AGENTS),  # fmt: skip
    "mazerooms-16": Suite("mazerooms-16", presets.mazerooms_16, MAZE16_BINS, 30, 2, 1600, HELD_OUT_LAYOUTS,
                          configurator=_IMAGINE, agents=_SCALE_AGENTS),  # fmt: skip
    "multiroom": Suite("multiroom", presets.multiroom, MULTIROOM_BINS, 30, 5, 200, HELD_OUT_LAYOUTS,
                       configurator=_IMAGINE),  # fmt: skip
    "pointmaze-medium": Suite("pointmaze-medium", presets.pointmaze_medium, PM_MEDIUM_BINS, 30, 5, 600, **_PM_PLANNING),
    "pointmaze-large": Suite("pointmaze-large", presets.pointmaze_large, PM_LARGE_BINS, 30, 5, 800, **_PM_PLANNING),
    "pointmaze-giant": Suite("pointmaze-giant", presets.pointmaze_giant, PM_GIANT_BINS, 10, 1, 1000, **_PM_PLANNING),
    "debug": Suite("debug", presets.debug, EMPTY_BINS, 3, 2, 30),
}


def grid_env_actions(cfg: ExperimentConfig) -> tuple[int, ...]:
    """The MiniGrid action ids of the experiment's collector (the oracle's actions; PointMaze: unused)."""
    from hjepa.envs.minigrid_nav import action_spec

    return action_spec(cfg.data.action_subset).env_actions


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise UnknownNameError(f"Unknown suite '{name}'. Suites: {', '.join(SUITES)}.{did_you_mean(name, SUITES)}")
    return SUITES[name]


def suite_for_env(env_id: str, cfg: ExperimentConfig | None = None, derive: bool = True) -> Suite:
    """The suite whose experiment collects in ``env_id`` on its training layout (for ``hjepa
    evaluate --env``); else, with ``derive``, the suite derived from the env
    (:func:`~hjepa.experiments.generic.generic_suite`, for a model of config ``cfg``)."""
    for suite in SUITES.values():
        if suite.experiment(quick=True).data.env_id == env_id and not suite.held_out:
            return suite
    if derive and not is_pointmaze(env_id):
        from hjepa.experiments.generic import generic_suite

        return generic_suite(env_id, cfg)
    envs = [suite.experiment(quick=True).data.env_id for suite in SUITES.values()]
    raise UnknownNameError(f"No suite evaluates '{env_id}'. Suites: {', '.join(SUITES)}.{did_you_mean(env_id, envs)}")


def check_suite_env(suite: Suite, env_id: str) -> None:
    """:class:`SpecMismatchError` unless ``suite``'s tasks are drawn in ``env_id``."""
    expected = suite.experiment(quick=True).data.env_id
    if env_id == expected:
        return
    own = [s.name for s in SUITES.values() if s.experiment(quick=True).data.env_id == env_id]
    hint = f"its suites: {', '.join(own)}" if own else "no suite draws tasks there"
    raise SpecMismatchError(f"Suite '{suite.name}' draws its tasks in '{expected}', but the model is trained on "
                            f"'{env_id}' ({hint}). Pick the suite of the model's env, or train on the suite's.")


def bench(suite: Suite, cfg: ExperimentConfig, out: str | Path, quick: bool, eval_cfg: EvalConfig | None = None,
          console: Console | None = None, per_bin: int | None = None) -> dict:  # fmt: skip
    """Collect, train (world model and critics), evaluate every agent, write the report."""
    console = console or make_console()
    run = run_experiment(cfg, out, console=console)
    return evaluate_checkpoint(run.train.checkpoint, suite, out, quick, eval_cfg, console, run, per_bin)


def evaluate_checkpoint(ckpt: str | Path, suite: Suite, out: str | Path, quick: bool, eval_cfg: EvalConfig | None = None,
                        console: Console | None = None, run: RunResult | None = None,
                        per_bin: int | None = None) -> dict:  # fmt: skip
    """Evaluate a trained checkpoint on ``suite``'s tasks; writes results.json, report.md, plots."""
    console, out = console or make_console(), Path(out)
    module = load_module(ckpt)
    stack, cfg = module.stack, module.cfg
    data = _dataset_of(module.hparams.get("data_path", ""), ckpt)
    eval_cfg = eval_cfg or suite.eval_config(cfg.seed)
    n = per_bin or (suite.per_bin_quick if quick else suite.per_bin)
    tasks = (suite.draw or suite_tasks)(cfg.data.env_id, suite.layouts(cfg), n, suite.bins, seed=cfg.seed + 1,
                                        env_actions=grid_env_actions(cfg))  # fmt: skip
    torch.manual_seed(cfg.seed)
    memory = planning_memory(data, eval_cfg)
    agents, records = evaluate_agents(stack, cfg.data.env_id, tasks, list(suite.bins), eval_cfg, console.is_terminal,
                                      memory)  # fmt: skip
    trained_on = {"device": "unknown", "precision": "unknown", **module.trained_on}  # older checkpoints lack it
    levels = _with_subgoal_share(levels_report(stack, data, seed=cfg.seed), agents)
    levels = _with_block_edges(levels, block_edge_figures(stack, memory, cfg.data.env_id, list(suite.layouts(cfg))))
    doc = results_document(suite.name, quick, cfg.seed, trained_on["device"], stack.num_levels, _train_figures(run),
                           agents, levels, precision=trained_on["precision"], command=_command(),
                           flat_width=_flat_width(stack, records, eval_cfg), budget=_budget(stack, records),
                           **_task_figures(suite, records), **_warnings(run, stack, ckpt))  # fmt: skip
    write_json(out / "results.json", doc)
    write_json(out / "episodes.json", [dataclasses.asdict(r) for r in records])
    plot_success_by_bin(doc, out / "plots" / "success_by_bin.png")
    plot_pred_error_by_horizon(doc["levels_report"], out / "plots" / "pred_error_by_horizon.png")
    plot_compute_by_distance(records, out / "plots" / "compute_by_distance.png")
    write_text(out / "report.md", results_markdown(doc))
    console.print(results_table(doc))
    print_warnings(console, warnings_of(doc))
    return doc


def _warnings(run: RunResult | None, stack: torch.nn.Module, ckpt: str | Path) -> dict:
    """``warnings``: level 0's readiness warnings (:mod:`hjepa.readiness`) of the training run,
    or of the checkpoint's run folder when this command trained nothing; an empty list when it
    looks ready; no key when neither holds the training figures."""
    found = readiness_warnings(run.levels, run.train.steps) if run and run.levels else checkpoint_warnings(stack, ckpt)
    return {} if found is None else {"warnings": [w.as_dict() for w in found]}


def _task_figures(suite: Suite, records: list) -> dict:
    """``notes`` (the suite's, when it has some) and ``lava``: per agent, the episodes that
    ended by a step into lava (MiniGrid envs with lava only)."""
    out: dict = {"notes": suite.notes} if suite.notes else {}
    if any("lava" in r.extra for r in records):
        agents = dict.fromkeys(r.agent for r in records)
        out["lava"] = {a: sum(int(r.extra.get("lava", 0)) for r in records if r.agent == a) for a in agents}
    return out


def _with_subgoal_share(levels: list[dict], agents: dict) -> list[dict]:
    """``levels_report`` with, for level 1, the share of hjepa's env steps whose level-0 target
    was an upper level's subgoal."""
    share = agents.get("hjepa", {}).get("upper_target_share")
    return [{**r, "subgoal_share": share} if r["level"] == 1 and share is not None else r for r in levels]


def _with_block_edges(levels: list[dict], edges: EdgeFigures | None) -> list[dict]:
    """``levels_report`` with, for a ``gridcoarse`` level 1, its block graph's edge precision and
    recall against the evaluated layouts' own (:mod:`hjepa.experiments.block_edges`)."""
    if edges is None:
        return levels
    return [{**r, "block_edges": edges._asdict()} if r["level"] == 1 else r for r in levels]


def _budget(stack: torch.nn.Module, records: list) -> dict | None:
    """The planning budget measured on hjepa and given to flat, in whole-map level-0 predictions."""
    hjepa = [r for r in records if r.agent == "hjepa"]
    if not hjepa:
        return None
    b = Budget.of(hjepa, stack.action_spec.repeat)
    return {"per_step": round(b.per_step, 3), "per_episode": round(b.per_episode, 2),
            "unit": "one level-0 prediction on the whole map"}  # fmt: skip


def _dataset_of(path: str, ckpt: str | Path) -> OfflineDataset:
    try:
        return OfflineDataset.open(path)
    except DatasetError as exc:
        raise DatasetError(f"The checkpoint '{ckpt}' refers to the dataset '{path}', which cannot be read: {exc}") from exc

def _train_figures(run: RunResult | None) -> dict:
    if run is None:
        return {"wall_s": 0.0, "steps": 0, "samples_per_s": 0.0, "peak_mem_mb": 0.0}
    t = run.train
    return {"wall_s": round(t.wall_s, 2), "steps": int(t.steps), "samples_per_s": round(t.samples_per_s, 1),
            "peak_mem_mb": round(t.peak_mem_mb, 1),
            "critic_wall_s": round(t.critic.wall_s, 2) if t.critic else 0.0}  # fmt: skip


def _flat_width(stack: torch.nn.Module, records: list, cfg: EvalConfig) -> int | None:
    """The flat agent's level-0 beam width (or samples per iteration, continuous actions), at
    the budget :func:`evaluate_agents` gave it."""
    from hjepa.agents.planning import flat_width

    hjepa = [r for r in records if r.agent == "hjepa"]
    if not hjepa or not any(r.agent == "flat" for r in records):
        return None
    return flat_width(stack, calls_per_decision(hjepa, stack.action_spec.repeat), cfg.flat_horizon)


def _command() -> str:
    return "hjepa " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("hjepa") else ""


def results_table(doc: dict) -> Table:
    """The agents side by side: success (95% CI), SPL, per-bin success, calls and latency."""
    bins = list(next(iter(doc["agents"].values()))["by_distance"])
    table = Table(title=f"{doc['suite']}: {doc['levels']} levels" + (" (quick)" if doc["quick"] else ""))
    for col in ["agent", "episodes", "success", "95% CI", "SPL", *bins, "calls/step", "ms/step (median)", "p95"]:
        table.add_column(col, justify="left" if col == "agent" else "right")
    for name, a in doc["agents"].items():
        lo, hi = a["success_ci95"]
        table.add_row(name, str(a["episodes"]), f"{a['success']:.2f}", f"{lo:.2f}-{hi:.2f}", f"{a['spl']:.2f}",
                      *[f"{a['by_distance'][b]['success']:.2f}" for b in bins],
                      f"{a['predictor_calls_per_step']:.0f}", f"{a['plan_ms_median']:.2f}", f"{a['plan_ms_p95']:.2f}")  # fmt: skip
    return table


def results_markdown(doc: dict) -> str:
    """``report.md``: the table of :func:`results_table`, per-level figures, the command."""
    lines = [f"# {doc['suite']} benchmark" + (" (quick)" if doc["quick"] else ""), ""]
    if doc.get("command"):
        lines += [f"Produced by: `{doc['command']}`", ""]
    t = doc["train"]
    trained = f" Training: {t['steps']} steps, {t['wall_s']:.0f} s, {t['samples_per_s']:.0f} samples/s, peak " \
              f"memory {t['peak_mem_mb']:.0f} MB." if t["steps"] else ""  # evaluate-only: no training ran  # fmt: skip
    lines += [f"Seed {doc['seed']}, trained on {doc['device']} ({doc.get('precision', 'unknown')}), "
              f"{doc['levels']} levels.{trained}", ""]  # fmt: skip
    lines += agents_table_md(doc)
    lines += ["", "| level | tau | dim | pred error by horizon (spread units) | copy-last-state | std min | eff. rank |",
              "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in doc["levels_report"]:
        fmt = lambda xs: ", ".join(f"{x:.3f}" for x in xs)  # noqa: E731
        lines.append(f"| {r['level']} | {r['tau']} | {dim_cell(r)} | {fmt(r['pred_error_by_horizon'])} | "
                     f"{fmt(r.get('copy_error_by_horizon', []))} | {r['std_min']:.3f} | {r['effective_rank']:.1f} |")  # fmt: skip
    lines += ["", MAP_NOTE] if any(r.get("map") for r in doc["levels_report"]) else []
    lines += ["", *warnings_md(warnings_of(doc))] if doc.get("warnings") else []
    lines += ["", "![success by bin](plots/success_by_bin.png)", "![prediction error](plots/pred_error_by_horizon.png)", ""]
    return "\n".join(lines)


def config_from_checkpoint(ckpt: str | Path) -> ExperimentConfig:
    return from_dict(ExperimentConfig, read_checkpoint(ckpt)["hyper_parameters"]["config"])

