"""``inspect_checkpoint``: every view of a checkpoint, written to a folder (``hjepa inspect``).

Output (``OUT``): ``inspect.md`` (tables and figures), ``inspect.json`` (the same figures as
data) and ``plots/``: ``pred_error_by_horizon.png``, ``embeddings_level{k}.png``,
``neighbours_level{k}.png``, ``episode.png``, ``episode_predictions.png``, ``episode.gif`` and
``critic_map.png`` (the last four need a MiniGrid layout and, for the critic, trained critics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from rich.progress import Progress
from rich.table import Table

from hjepa.envs.oracle import LayoutOracle, make_tasks
from hjepa.envs.tasks import DistanceBins, Task
from hjepa.errors import InspectionError, NotNavigationEnvError, UnknownEnvError
from hjepa.inspection.critic_map import critic_maps, plot_critic_maps
from hjepa.inspection.embeddings import embedding_view, plot_embeddings
from hjepa.inspection.episode import (EpisodeView, PlannerAgent, TracingAgent, goal_obs_for, plot_episode,
                                      plot_episode_predictions, save_episode_gif, trace_episode)  # fmt: skip
from hjepa.inspection.predictions import neighbour_views, plot_neighbours, plot_prediction_errors, prediction_errors
from hjepa.inspection.source import Source, check_levels, dataset_bank, layout_bank, load_source
from hjepa.io import write_json, write_text
from hjepa.planning.configurator import RuleConfigurator
from hjepa.planning.memory import memory_observations
from hjepa.plots import save_figure


@dataclass(frozen=True)
class InspectConfig:
    """What :func:`inspect_checkpoint` looks at."""

    levels: tuple[int, ...] | None = None
    """Levels to inspect (default: all of the checkpoint's)."""
    episode: int | None = None
    """Index into the evaluation tasks of the episode to trace (default: the longest task)."""
    max_horizon: int = 4
    """Longest open-loop rollout, in steps of each level."""
    windows: int = 128
    """Dataset windows for the prediction errors."""
    examples: int = 256
    """Dataset windows for the nearest-neighbour retrieval figures."""
    neighbours: int = 5
    """Nearest observations shown per prediction (the k of top-k)."""
    max_steps: int = 100
    """Env steps before the traced episode stops."""
    gif: bool = True
    """Write the animated GIF of the episode."""
    seed: int | None = None
    """Seeds windows and the planner (default: the checkpoint's seed)."""
    configurator: RuleConfigurator | None = None
    """The traced planner's configurator (``hjepa inspect``: the suite's; default the rule's
    defaults). A graph or imagine planner gets the dataset's distinct observations as memory."""


class InspectReport(NamedTuple):
    """What was written, and the figures as plain data (``inspect.json``)."""

    out: Path
    files: list[Path]
    doc: dict[str, Any]


def default_tasks(env_id: str, layout_seeds: Sequence[int], seed: int, n: int = 10,
                  oracle: LayoutOracle | None = None) -> list[Task]:  # fmt: skip
    """``n`` seeded tasks over every distance (one open bin), when no suite gives tasks."""
    bins = DistanceBins.from_mapping({"any": (1, math.inf)})
    return make_tasks(env_id, list(layout_seeds), n, bins, seed=seed, oracle=oracle)


def inspect_checkpoint(checkpoint: str | Path, out: str | Path, cfg: InspectConfig = InspectConfig(),
                       tasks: Sequence[Task] | None = None, data: str | Path | None = None,
                       agent: TracingAgent | None = None, progress: bool = False) -> InspectReport:  # fmt: skip
    """Write every view of ``checkpoint`` to ``out`` (see the module docstring).

    Args:
        tasks: evaluation tasks to pick the episode from (``hjepa inspect`` passes its suite's
            quick tasks, as ``hjepa bench --quick`` draws them); default :func:`default_tasks`.
        data: the dataset, when not where the checkpoint says.
        agent: the agent to trace (default the hierarchical planner, as ``HJEPAAgent``).

    Raises:
        CheckpointError, DatasetError: as :func:`~hjepa.inspection.source.load_source`.
        InspectionError: a level the checkpoint lacks, an episode index out of range.
    """
    src = load_source(checkpoint, data)
    levels = check_levels(src.stack, cfg.levels)
    seed = src.cfg.seed if cfg.seed is None else cfg.seed
    out = Path(out)
    plots, files = out / "plots", []
    doc: dict[str, Any] = {"checkpoint": str(src.checkpoint), "data": str(src.data.path), "levels": levels, "notes": []}
    episode = _episode_task(src, cfg, tasks, seed, doc)  # checked before the slow work
    with Progress(disable=not progress, transient=True) as bar:
        stage = bar.add_task("inspecting", total=2)
        files += _dataset_views(src, levels, cfg, seed, plots, doc)
        bar.advance(stage)
        if episode is not None:
            files += _map_views(src, levels, cfg, seed, episode, agent, plots, doc)
        bar.advance(stage)
    doc["files"] = [str(f.relative_to(out)) for f in files]
    write_json(out / "inspect.json", doc)
    write_text(out / "inspect.md", inspect_markdown(doc))
    return InspectReport(out, files + [out / "inspect.json", out / "inspect.md"], doc)


def _episode_task(src: Source, cfg: InspectConfig, tasks: Sequence[Task] | None, seed: int,
                  doc: dict) -> tuple[LayoutOracle, list[Task], int] | None:  # fmt: skip
    """The oracle, tasks and episode index of the map views, or None (with a note) when the
    checkpoint's env has no MiniGrid layout."""
    env_id = src.cfg.data.env_id
    if src.stack.obs_spec.kind not in ("grid", "image") or not src.stack.action_spec.is_discrete:
        doc["notes"].append(f"Map views skipped: they need a MiniGrid layout ({src.stack.obs_spec.kind} observations).")
        return None
    try:
        oracle = LayoutOracle(env_id, env_actions=src.stack.action_spec.env_actions)
        tasks = list(tasks) if tasks is not None else default_tasks(env_id, [src.cfg.data.layout_seed], seed + 1,
                                                                     oracle=oracle)  # fmt: skip
    except (NotNavigationEnvError, UnknownEnvError) as exc:
        doc["notes"].append(f"Map views skipped: {exc}")
        return None
    return oracle, tasks, pick_episode(tasks, cfg.episode)


def _dataset_views(src: Source, levels: list[int], cfg: InspectConfig, seed: int, plots: Path, doc: dict) -> list[Path]:
    stack, data, files = src.stack, src.data, []
    rows = prediction_errors(stack, data, levels, cfg.max_horizon, cfg.windows, seed)
    doc["prediction"] = [r._asdict() for r in rows]
    files.append(save_figure(plot_prediction_errors(rows), plots / "pred_error_by_horizon.png"))
    bank = dataset_bank(stack, data, target=False, seed=seed)
    doc["embeddings"] = []
    for k in levels:
        view = embedding_view(bank, k, seed)
        doc["embeddings"].append({"level": k, "dim": view.dim, "std_min": view.std_min, "std_mean": float(view.std.mean()),
                                  "eff_rank": view.eff_rank, "explained_2d": [float(v) for v in view.explained],
                                  "position_r2": view.position_r2, "observations": len(view.pose)})  # fmt: skip
        files.append(save_figure(plot_embeddings(view, src.cfg.loss.regularizer), plots / f"embeddings_level{k}.png"))
    doc["neighbours"] = []
    for view in neighbour_views(stack, data, levels, cfg.examples, cfg.neighbours, seed):
        (hit, copy), (hit1, copy1), (cell, cell_moved, moved) = view.top_k(), view.top_k(1), view.cell_hits()
        doc["neighbours"].append({"level": view.level, "tau": view.tau, "k": cfg.neighbours, "examples": len(view.rank),
                                  "top_k": hit, "top_k_copy": copy, "top_1": hit1, "top_1_copy": copy1,
                                  "median_rank": float(np.median(view.rank)), "bank": view.bank_size,
                                  "top_1_cell": cell, "top_1_cell_moved": cell_moved, "moved": moved})  # fmt: skip
        files.append(save_figure(plot_neighbours(view, stack.obs_spec), plots / f"neighbours_level{view.level}.png", tight=False))
    return files


def _memory_for(src: Source, conf: RuleConfigurator, seed: int) -> torch.Tensor | None:
    """What ``conf``'s planners read from the dataset, as in the bench."""
    return memory_observations(src.data.obs, conf.planner, conf.upper, seed)


def _map_views(src: Source, levels: list[int], cfg: InspectConfig, seed: int,
               episode: tuple[LayoutOracle, list[Task], int], agent: TracingAgent | None, plots: Path,
               doc: dict) -> list[Path]:  # fmt: skip
    oracle, tasks, index = episode
    task = tasks[index]
    nav, graph = oracle.nav(task.layout_seed), oracle.graph(task.layout_seed)
    if agent is None and cfg.configurator is not None:
        agent = PlannerAgent(src.stack, cfg.configurator, seed, _memory_for(src, cfg.configurator, seed))
    view = trace_episode(src.stack, nav, graph, task, agent, cfg.max_steps, seed)
    doc["episode"] = episode_summary(view, index, len(tasks))
    if src.stack.num_levels > 1 and not any(r.level > 0 for r in view.subgoals):
        doc["notes"].append(no_upper_plans_note(cfg.configurator or RuleConfigurator()))
    files = [save_figure(plot_episode(view), plots / "episode.png"),
             save_figure(plot_episode_predictions(view), plots / "episode_predictions.png")]  # fmt: skip
    if cfg.gif:
        files.append(Path(save_episode_gif(view, str(plots / "episode.gif"))))
    nav = oracle.nav(task.layout_seed)
    goal_obs = goal_obs_for(src.stack, nav, task)
    maps = critic_maps(src.stack, layout_bank(src.stack, nav), graph, goal_obs, task.goal, levels)
    doc["critic"] = [{"level": m.level, "goal": list(m.goal), "spearman": m.spearman,
                      "mean_abs_error": float(np.nanmean(np.abs(m.critic - m.oracle)))} for m in maps]  # fmt: skip
    if not maps:
        doc["notes"].append("No critic map: the checkpoint has no trained critics (critic.enabled was off).")
    files.append(save_figure(plot_critic_maps(maps), plots / "critic_map.png"))
    return files


def no_upper_plans_note(conf: RuleConfigurator) -> str:
    """Why no level above 0 planned in the traced episode, and how to see their subgoals."""
    if conf.max_levels <= 1:
        why, fix = "the configurator plans on level 0 alone (max_levels=1)", "--configurator max_levels=8"
    elif conf.use_critic:
        why = ("the critics put the goal within level 0's reach at every step, and the configurator activates "
               "a level only for goals beyond the reach of the levels below")  # fmt: skip
        fix = "--configurator use_critic=false (every level then plans, on latent distance)"
    else:
        why, fix = "the configurator activated no level above 0", "--episode I (a farther task)"
    return (f"No level above 0 planned in the traced episode: {why}. To see the upper levels' subgoals, run "
            f"`hjepa inspect` again with {fix}.")


def pick_episode(tasks: Sequence[Task], episode: int | None) -> int:
    """``episode`` checked against ``tasks``; by default the task with the longest oracle distance."""
    if not tasks:
        raise InspectionError("No evaluation tasks to trace an episode from.")
    if episode is None:
        return int(np.argmax([t.distance for t in tasks]))
    if not 0 <= episode < len(tasks):
        raise InspectionError(
            f"Episode {episode} requested, but there are {len(tasks)} evaluation tasks (episodes 0..{len(tasks) - 1})."
        )
    return int(episode)


def episode_summary(view: EpisodeView, index: int, n_tasks: int) -> dict[str, Any]:
    """The traced episode as plain data, with per-level mean prediction and copy errors."""
    per_level = {}
    for level in sorted({r.level for r in view.subgoals}):
        recs = [r for r in view.subgoals if r.level == level and r.reached_pose is not None]
        per_level[str(level)] = {"plans": sum(r.level == level for r in view.subgoals), "compared": len(recs),
                                 "pred_error": float(np.mean([r.pred_error for r in recs])) if recs else None,
                                 "copy_error": float(np.mean([r.copy_error for r in recs])) if recs else None,
                                 "decode_distance": float(np.mean([r.decode_distance for r in view.subgoals
                                                                   if r.level == level]))}  # fmt: skip
    t = view.task
    return {"index": index, "of": n_tasks, "layout_seed": t.layout_seed, "start": list(t.start), "goal": list(t.goal),
            "oracle_distance": t.distance, "bin": t.bin, "success": bool(view.success), "steps": len(view.actions),
            "subgoals": per_level}  # fmt: skip


def summary_table(doc: dict[str, Any]) -> Table:
    """A rich table, one row per level: embedding health, retrieval of the true target by the
    prediction (and by copying), the episode's subgoal errors and the critic's agreement."""
    table = Table(title="inspection summary (pred / copy: the level's prediction / copying the current state)")
    for col in ("level", "std min", "eff. rank", "position R\u00b2", "true target top-k", "subgoal err", "critic Spearman"):
        table.add_column(col, justify="right")
    emb = {e["level"]: e for e in doc.get("embeddings", [])}
    nbr = {n["level"]: n for n in doc.get("neighbours", [])}
    sub = doc.get("episode", {}).get("subgoals", {})
    crit = {c["level"]: c for c in doc.get("critic", [])}
    for k in doc["levels"]:
        e, n, g, c = emb.get(k), nbr.get(k), sub.get(str(k)), crit.get(k)
        table.add_row(str(k), f"{e['std_min']:.3f}" if e else "-", f"{e['eff_rank']:.1f}" if e else "-",
                      f"{e['position_r2']:.2f}" if e else "-",
                      f"{n['top_k']:.2f} / {n['top_k_copy']:.2f}" if n else "-",
                      f"{g['pred_error']:.2f} / {g['copy_error']:.2f}" if g and g["pred_error"] is not None else "-",
                      f"{c['spearman']:.2f}" if c else "-")  # fmt: skip
    return table


def inspect_markdown(doc: dict[str, Any]) -> str:
    """``inspect.md``: the figures of ``doc`` as tables, with the plots."""
    lines = ["# Inspection", "", f"Checkpoint `{doc['checkpoint']}`, dataset `{doc['data']}`, levels {doc['levels']}.", "",
             "## Prediction error by horizon (spread units)", "", "| level | tau | predicted | copy last state |",
             "| --- | --- | --- | --- |"]  # fmt: skip
    fmt = lambda xs: ", ".join(f"{x:.3f}" for x in xs)  # noqa: E731
    lines += [f"| {r['level']} | {r['tau']} | {fmt(r['pred'])} | {fmt(r['copy'])} |" for r in doc["prediction"]]
    lines += ["", "![prediction error](plots/pred_error_by_horizon.png)", "", "## Embedding health", "",
              "| level | dim | std min | std mean | eff. rank | PCA share (2 axes) | position R² (linear, held out) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    lines += [f"| {e['level']} | {e['dim']} | {e['std_min']:.3f} | {e['std_mean']:.3f} | {e['eff_rank']:.1f} | "
              f"{fmt(e['explained_2d'])} | {e['position_r2']:.2f} |" for e in doc["embeddings"]]  # fmt: skip
    lines += ["", "std is per state dimension over the dataset's distinct observations: a dimension that never changes "
              "(e.g. a map level's wall cells) has std 0 without collapse; the effective rank says how many directions "
              "the states spread in."]  # fmt: skip
    lines += ["", "## Nearest neighbours of one-step predictions", "",
              "| level | tau | true target in top-k (pred / copy) | top-1 (pred / copy) | median rank | top-1 on the true cell "
              "(all / when the agent moved) | distinct obs |", "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    lines += [f"| {n['level']} | {n['tau']} | {n['top_k']:.2f} / {n['top_k_copy']:.2f} (k={n['k']}) | "
              f"{n['top_1']:.2f} / {n['top_1_copy']:.2f} | {n['median_rank']:.0f} | {n['top_1_cell']:.2f} / "
              f"{n['top_1_cell_moved']:.2f} ({n['moved']} moved) | {n['bank']} |" for n in doc["neighbours"]]  # fmt: skip
    lines += [""] + [f"![level {k}](plots/embeddings_level{k}.png) ![neighbours {k}](plots/neighbours_level{k}.png)"
                     for k in doc["levels"]]  # fmt: skip
    if "episode" in doc:
        e = doc["episode"]
        lines += ["", f"## Episode {e['index']} of {e['of']}", "",
                  f"Start {e['start']}, goal {e['goal']}, oracle distance {e['oracle_distance']} ({e['bin']}): "
                  f"{'success' if e['success'] else 'failure'} after {e['steps']} steps.", "",
                  "| level | plans | subgoal vs state reached tau later (latent) | copy current state | "
                  "subgoal to nearest real state |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
        num = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lines += [f"| {k} | {g['plans']} | {num(g['pred_error'])} | {num(g['copy_error'])} | {num(g['decode_distance'])} |"
                  for k, g in e["subgoals"].items()]  # fmt: skip
        lines += ["", "![episode](plots/episode.png)", "![predictions](plots/episode_predictions.png)"]
        if "plots/episode.gif" in doc.get("files", []):
            lines.append("![episode animation](plots/episode.gif)")
    if doc.get("critic"):
        lines += ["", "## Critic against the oracle", "", "| level | Spearman | mean abs. error (steps) |", "| --- | --- | --- |"]
        lines += [f"| {c['level']} | {c['spearman']:.2f} | {c['mean_abs_error']:.1f} |" for c in doc["critic"]]
        lines += ["", "![critic](plots/critic_map.png)"]
    lines += [""] + [f"- {n}" for n in doc["notes"]] + [""]
    return "\n".join(lines)
