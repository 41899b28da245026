"""One evaluation episode seen through the planner's traces.

The agent plans from observations only; the map, the poses and the oracle's distances below
are for display. A subgoal is an abstract state of level k > 0 (the first state of its plan);
it is *decoded* to the pose of the layout whose observation, encoded at level k, lies
nearest to it. Beside it: what level k predicted against the state it actually reached
``tau_k`` env steps later, with copying the current state as the baseline.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hjepa.agents.episode import walk
from hjepa.envs.minigrid_nav import GridNav
from hjepa.envs.oracle import PoseGraph, goal_observation
from hjepa.envs.tasks import Task
from hjepa.envs.raster import grid_to_rgb
from hjepa.inspection.source import as_observed, encode_all, layout_bank, map_extent, nearest, observe
from hjepa.io import atomic_path
from hjepa.planning.configurator import Configurator, RuleConfigurator
from hjepa.planning.hierarchy import StepTrace
from hjepa.planning.routes import make_planner
from hjepa.stack import HJEPA

LEVEL_STYLE = {1: ("tab:orange", "s"), 2: ("tab:purple", "D"), 3: ("tab:cyan", "^"), 4: ("tab:pink", "v")}
_DIR_DX = {0: (1, 0), 1: (0, 1), 2: (-1, 0), 3: (0, -1)}


class TracingAgent(Protocol):
    """What :func:`trace_episode` drives: ``hjepa.agents.HJEPAAgent`` fits (``trace`` holds
    one :class:`StepTrace` per ``act``)."""

    trace: list[Any]

    def reset(self, obs: np.ndarray, goal_obs: np.ndarray) -> None: ...

    def act(self, obs: np.ndarray) -> int: ...


class PlannerAgent:
    """The stack's planner as an agent, for the core: the planner ``HJEPAAgent`` wraps
    (:func:`~hjepa.planning.routes.make_planner`: level 1's routes on a ``gridcoarse`` stack
    that imagines, the hierarchical planner otherwise)."""

    def __init__(self, stack: HJEPA, configurator: Configurator | None = None, seed: int = 0,
                 memory: torch.Tensor | None = None) -> None:  # fmt: skip
        self.planner = make_planner(stack, configurator or RuleConfigurator(), seed, memory)
        self.trace: list[StepTrace] = []

    def reset(self, obs: np.ndarray, goal_obs: np.ndarray) -> None:
        self.trace = []
        self.planner.reset(torch.from_numpy(np.ascontiguousarray(goal_obs)))

    def act(self, obs: np.ndarray) -> int:
        action, trace = self.planner.act(torch.from_numpy(np.ascontiguousarray(obs)))
        self.trace.append(trace)
        return action


class SubgoalRecord(NamedTuple):
    """A plan of level ``level`` > 0 made at env step ``step``; its first state is the subgoal."""

    level: int
    step: int
    pose: tuple[int, int, int]  # decoded: nearest layout pose of the subgoal state
    decode_distance: float  # latent distance from the subgoal to that nearest real state
    goal_distance: float  # oracle actions from the decoded pose to the goal
    pred_error: float  # |subgoal - s^k reached at step + tau_k| (NaN: the episode ended sooner)
    copy_error: float  # |s^k at step - s^k at step + tau_k|
    reached_pose: tuple[int, int, int] | None  # the agent's pose at step + tau_k


class EpisodeView(NamedTuple):
    """One traced episode. ``t`` env steps; poses include the start."""

    task: Task
    layout: np.ndarray  # "w h 3" encoding, no agent
    poses: np.ndarray  # "t+1 3"
    actions: list[int]
    success: bool
    traces: list[StepTrace]
    subgoals: list[SubgoalRecord]  # every replanned subgoal, levels k > 0
    active: list[dict[int, tuple[int, int, int]]]  # per step: level -> decoded subgoal in force
    oracle_distance: np.ndarray  # "t+1" from each pose to the goal
    taus: tuple[int, ...]


def trace_episode(stack: HJEPA, nav: GridNav, graph: PoseGraph, task: Task, agent: TracingAgent | None = None,
                  max_steps: int = 100, seed: int = 0) -> EpisodeView:  # fmt: skip
    """Run ``agent`` (default :class:`PlannerAgent`) on ``task`` in ``nav``'s layout and read
    its traces back onto the map."""
    agent = agent or PlannerAgent(stack, seed=seed)
    ep = walk(agent, nav, task.start, task.goal, goal_obs_for(stack, nav, task), stack.action_spec.env_actions,
              max_steps, observe=lambda n: observe(n, stack.obs_spec), keep=True)  # fmt: skip
    poses, actions = ep.poses, ep.actions
    states = encode_all(stack, np.stack(ep.observations))
    dist = graph.distances_to(task.goal)
    bank = layout_bank(stack, nav)
    subgoals, active = _decode(stack, agent.trace, states, bank, poses, dist)
    return EpisodeView(task, np.array(nav.encoding), np.array(poses), actions, ep.success,
                       list(agent.trace), subgoals, active,
                       np.array([dist.get(tuple(p), np.nan) for p in poses], float), stack.taus)  # fmt: skip


def goal_obs_for(stack: HJEPA, nav: GridNav, task: Task) -> np.ndarray:
    """The task's goal observation in the stack's observation kind: the agent on the goal cell,
    the rest of the layout as at reset (``nav`` is reset)."""
    nav.reset()
    grid = goal_observation(nav, task.goal)
    return as_observed(grid, stack.obs_spec)


def _decode(stack: HJEPA, traces: list[StepTrace], states: list[torch.Tensor], bank: Any, poses: list,
            dist: dict) -> tuple[list[SubgoalRecord], list[dict[int, tuple[int, int, int]]]]:  # fmt: skip
    records, active = [], []
    for t, step in enumerate(traces):
        now: dict[int, tuple[int, int, int]] = {}
        for lt in step.levels:
            if lt.level == 0 or lt.subgoal is None:
                continue
            idx, gap = nearest(lt.subgoal[None], bank.states[lt.level], 1)
            pose = tuple(int(v) for v in bank.pose[idx[0, 0]])
            now[lt.level] = pose
            if lt.replanned:
                records.append(_record(stack, lt, t, pose, float(gap[0, 0]), states, poses, dist))
        active.append(now)
    return records, active


def _record(stack: HJEPA, lt: Any, t: int, pose: tuple, gap: float, states: list[torch.Tensor], poses: list,
            dist: dict) -> SubgoalRecord:  # fmt: skip
    k, later = lt.level, t + stack.taus[lt.level]
    s = states[k]
    if later < len(s):
        err = float((lt.subgoal - s[later]).norm())
        copy = float((s[t] - s[later]).norm())
        reached = tuple(int(v) for v in poses[later])
    else:
        err = copy = float("nan")
        reached = None
    return SubgoalRecord(k, t, pose, gap, float(dist.get(pose, np.nan)), err, copy, reached)


# ----------------------------------------------------------------------------- figures
def _draw_map(ax: Any, layout: np.ndarray) -> None:
    w, h = layout.shape[:2]
    ax.imshow(grid_to_rgb(layout, tile=8), extent=map_extent(w, h), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _offset(level: int) -> float:
    """Levels' markers side by side when they decode to the same cell."""
    return 0.22 * (2 * level - 3)


def plot_episode(view: EpisodeView) -> Figure:
    """Left: the map with the agent's path, start, goal and every level's decoded subgoals
    (arrows from where the agent stood when the level planned). Right: oracle distance to the
    goal of the agent and of each decoded subgoal over time."""
    fig = Figure(figsize=(12, 5.5))
    ax_map, ax_t = fig.subplots(1, 2, width_ratios=[1, 1.2])
    _draw_map(ax_map, view.layout)
    p = view.poses
    ax_map.plot(p[:, 0], p[:, 1], color="white", linewidth=1.5, alpha=0.8)
    ax_map.scatter(p[:, 0], p[:, 1], c=np.arange(len(p)), cmap="plasma", s=14, zorder=3)
    ax_map.plot(*view.task.start[:2], marker="o", color="red", markersize=10, markeredgecolor="white", label="start",
                linestyle="")  # fmt: skip
    ax_map.plot(*p[-1, :2], marker="X", color="white", markersize=10, markeredgecolor="black", label="end", linestyle="")
    ax_map.plot(*view.task.goal, marker="*", color="gold", markersize=16, markeredgecolor="black", label="goal",
                linestyle="")  # fmt: skip
    for level in sorted({r.level for r in view.subgoals}):
        color, marker = LEVEL_STYLE.get(level, ("tab:brown", "o"))
        recs = [r for r in view.subgoals if r.level == level]
        o = _offset(level)
        for r in recs:
            x0, y0 = p[r.step, :2]
            ax_map.annotate("", xy=(r.pose[0] + o, r.pose[1] + o), xytext=(x0, y0),
                            arrowprops=dict(arrowstyle="->", color=color, alpha=0.5, linewidth=0.8))  # fmt: skip
        ax_map.scatter([r.pose[0] + o for r in recs], [r.pose[1] + o for r in recs], color=color, marker=marker,
                       s=40, edgecolors="black", zorder=4, label=f"level {level} subgoals (decoded)")  # fmt: skip
    ax_map.legend(fontsize="x-small", loc="upper right", framealpha=0.8)
    outcome = "reached the goal" if view.success else "did not reach the goal"
    ax_map.set_title(f"task: {view.task.distance} oracle actions ({view.task.bin}); agent {outcome} in {len(view.actions)} steps",
                     fontsize="small")  # fmt: skip
    _plot_distances(ax_t, view)
    return fig


def _plot_distances(ax: Any, view: EpisodeView) -> None:
    ax.plot(np.arange(len(view.poses)), view.oracle_distance, color="black", label="agent")
    for level in sorted({r.level for r in view.subgoals}):
        color, marker = LEVEL_STYLE.get(level, ("tab:brown", "o"))
        recs = [r for r in view.subgoals if r.level == level]
        ax.scatter([r.step for r in recs], [r.goal_distance for r in recs], color=color, marker=marker, s=25,
                   label=f"level {level} subgoal (tau={view.taus[level]})")  # fmt: skip
    tops = [max(lt.level for lt in st.levels) for st in view.traces]
    ax2 = ax.twinx()
    ax2.step(np.arange(len(tops)), tops, where="post", color="tab:green", alpha=0.4, linewidth=1)
    ax2.set_ylabel("top active level", color="tab:green")
    ax2.set_yticks(range(len(view.taus)))
    ax.set(title="oracle distance to the goal (actions)", xlabel="env step", ylabel="actions to the goal")
    ax.legend(fontsize="x-small")


def plot_episode_predictions(view: EpisodeView) -> Figure:
    """Per level k > 0: the subgoal (level k's prediction of its state tau_k steps later)
    against the state actually reached then, beside copying the current state; in latent
    units (top) and, decoded, in map cells (bottom)."""
    levels = sorted({r.level for r in view.subgoals})
    fig = Figure(figsize=(5 * max(1, len(levels)), 6.5))
    if not levels:
        fig.text(0.5, 0.5, "no level above 0 planned in this episode", ha="center")
        return fig
    axes = fig.subplots(2, len(levels), squeeze=False)
    for col, level in enumerate(levels):
        recs = [r for r in view.subgoals if r.level == level and r.reached_pose is not None]
        steps = [r.step for r in recs]
        top, bottom = axes[0, col], axes[1, col]
        top.plot(steps, [r.pred_error for r in recs], marker="o", label="subgoal vs reached")
        top.plot(steps, [r.copy_error for r in recs], marker="s", linestyle="--", color="grey", label="copy current")
        top.set(title=f"level {level}: predicted vs actual state at t+{view.taus[level]}", ylabel="latent distance")
        cells = [_manhattan(r.pose, r.reached_pose) for r in recs]
        copy = [_manhattan(tuple(view.poses[r.step]), r.reached_pose) for r in recs]
        bottom.plot(steps, cells, marker="o", label="decoded subgoal vs reached cell")
        bottom.plot(steps, copy, marker="s", linestyle="--", color="grey", label="current vs reached cell")
        bottom.set(xlabel="env step of the plan", ylabel="cells (Manhattan)")
        for ax in (top, bottom):
            ax.legend(fontsize="x-small")
            ax.set_ylim(bottom=0)
    return fig


def _manhattan(a: tuple, b: tuple) -> int:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def save_episode_gif(view: EpisodeView, path: str, fps: int = 4) -> str:
    """An animated GIF of the episode: the agent, its path so far, and the decoded subgoal
    each active level holds at that step (``matplotlib.animation`` with ``PillowWriter``)."""
    fig = Figure(figsize=(4.6, 5), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    _draw_map(ax, view.layout)
    ax.plot(*view.task.goal, marker="*", color="gold", markersize=14, markeredgecolor="black")
    (trail,) = ax.plot([], [], color="white", linewidth=1.5)
    (agent,) = ax.plot([], [], marker="o", color="red", markersize=8, markeredgecolor="white", zorder=5)
    (heading,) = ax.plot([], [], color="white", linewidth=2, zorder=6)
    marks = {k: ax.plot([], [], marker=LEVEL_STYLE.get(k, ("tab:brown", "o"))[1], linestyle="",
                        color=LEVEL_STYLE.get(k, ("tab:brown", "o"))[0], markersize=9, markeredgecolor="black",
                        label=f"level {k} subgoal")[0] for k in range(1, len(view.taus))}  # fmt: skip
    if marks:
        ax.legend(fontsize="x-small", loc="upper right")

    def frame(t: int) -> list:
        x, y, d = view.poses[t]
        trail.set_data(view.poses[: t + 1, 0], view.poses[: t + 1, 1])
        agent.set_data([x], [y])
        dx, dy = _DIR_DX[int(d)]
        heading.set_data([x, x + 0.45 * dx], [y, y + 0.45 * dy])
        now = view.active[min(t, len(view.active) - 1)] if view.active else {}
        for k, m in marks.items():
            pose = now.get(k)
            m.set_data(([pose[0] + _offset(k)], [pose[1] + _offset(k)]) if pose else ([], []))
        ax.set_title(f"step {t}/{len(view.actions)}  levels active: {[0, *sorted(now)]}", fontsize="small")
        return [trail, agent, heading, *marks.values()]

    anim = FuncAnimation(fig, frame, frames=len(view.poses), blit=False)
    with atomic_path(path) as tmp:
        anim.save(tmp, writer=PillowWriter(fps=fps))
    return str(path)
