"""Run agents on seeded, distance-binned navigation tasks and summarise them (docs/benchmark.md).

MiniGrid episodes run in :class:`~hjepa.envs.minigrid_nav.GridNav`, whose observations are
identical to MiniGrid's ``FullyObsWrapper`` (tested), with MiniGrid's own success criterion:
standing on the goal cell. PointMaze episodes run in
:mod:`hjepa.experiments.evaluate_pointmaze` (the env's MuJoCo model, its own success
criterion). Either way the agent sees the observation and the goal observation only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Protocol, Sequence

import numpy as np
import torch
from rich.progress import Progress

from hjepa.agents import Agent, FlatAgent, HJEPAAgent, OracleAgent, RandomAgent, UnboundedFlatAgent, imagine_nodes_for
from hjepa.agents.base import AGENTS, DEFAULT_AGENTS
from hjepa.agents.episode import walk
from hjepa.envs.maze_oracle import MazeTask, fixed_maze_tasks, make_maze_tasks
from hjepa.envs.oracle import POSE_ACTIONS, LayoutOracle, goal_observation, make_tasks
from hjepa.envs.tasks import Bins, Task
from hjepa.envs.pointmaze import is_pointmaze, maze_info
from hjepa.errors import ConfigError, UnknownNameError, did_you_mean
from hjepa.metrics import EpisodeRecord, summarise_by_agent
from hjepa.planning.configurator import RuleConfigurator
from hjepa.planning.memory import memory_observations


@dataclass(frozen=True)
class EvalConfig:
    """How agents are evaluated.

    Attributes:
        agents: agent names, in report order; "flat" needs "hjepa" before it (its budget is
            the hierarchy's measured predictor calls per step).
        max_steps: env steps before an episode counts as a failure.
        flat_horizon: level-0 horizon of the flat agent.
        configurator: the hierarchy's configurator settings.
        seed: seeds the agents.
    """

    agents: tuple[str, ...] = DEFAULT_AGENTS
    max_steps: int = 100
    flat_horizon: int = 8
    configurator: RuleConfigurator = RuleConfigurator()
    seed: int = 0


def check_agents(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in AGENTS]
    if unknown:
        hints = "".join(did_you_mean(n, AGENTS) for n in unknown)
        raise UnknownNameError(f"Unknown agent(s) {unknown}. Agents: {', '.join(AGENTS)}.{hints}")


def run_episode(agent: Agent, oracle: LayoutOracle, task: Task, max_steps: int,
                env_actions: Sequence[int]) -> EpisodeRecord:  # fmt: skip
    """One episode of ``agent`` on ``task``; path length counts actions taken.

    The goal observation is the agent on the goal cell with the rest of the layout as at the
    episode's start (:func:`~hjepa.envs.oracle.goal_observation`): it shows where to go, not
    which doors the way opens. A step into lava ends the episode as a failure, as MiniGrid's
    does (``extra["lava"]``). ``env_actions`` maps the agent's action index to the MiniGrid action id.
    """
    nav = oracle.nav(task.layout_seed)
    ep = walk(agent, nav, task.start, task.goal, goal_observation(nav, task.goal), env_actions, max_steps)
    steps = len(ep.actions)
    extra = {"layout_seed": task.layout_seed, "start": list(task.start), "goal": list(task.goal),
             "lava": int(ep.lava), **trace_figures(agent)}  # fmt: skip
    return EpisodeRecord(agent=agent.name, bin=task.bin, success=ep.success, steps=steps, path_len=float(steps),
                         oracle_len=float(task.distance), predictor_calls=agent.predictor_calls, plan_ms=ep.plan_ms,
                         extra=extra)  # fmt: skip


def trace_figures(agent: Agent) -> dict:
    """A planning agent's episode, from its trace: predictor calls by level (map units) and the
    env steps whose level-0 target was an upper level's subgoal (nothing for other agents)."""
    traces = getattr(agent, "trace", [])
    if not traces or not hasattr(traces[0], "levels"):
        return {}
    by_level: dict[int, float] = {}
    for step in traces:
        for level in step.levels:
            by_level[level.level] = by_level.get(level.level, 0.0) + float(level.calls)
    upper = sum(1 for step in traces if step.levels and step.levels[0].target == "subgoal")
    return {"calls_by_level": [by_level.get(k, 0.0) for k in range(max(by_level) + 1)], "upper_target_steps": upper}


def build_agents(stack: torch.nn.Module, oracle: LayoutOracle, cfg: EvalConfig,
                 memory: torch.Tensor | None = None) -> dict[str, Callable[["Budget"], Agent]]:  # fmt: skip
    """Factories by name; each takes the :class:`Budget` (the hierarchy's measured cost, for "flat").
    ``memory``: the "graph" planner's observations (hjepa and flat share them)."""
    spec = stack.action_spec
    conf = cfg.configurator

    def oracle_agent(_: float) -> Agent:
        return OracleAgent(_LayoutGraphs(oracle), spec)

    def flat(budget: Budget) -> Agent:
        nodes = imagine_nodes_for(stack, budget.per_episode) if conf.planner == "imagine" else conf.imagine_nodes
        return FlatAgent(stack, budget.per_step, cfg.flat_horizon, cfg.seed, conf.use_critic, planner=conf.planner,
                         memory=memory, imagine_nodes=nodes)  # fmt: skip

    return {
        "hjepa": lambda _: HJEPAAgent(stack, conf, cfg.seed, memory),
        "flat": flat,
        "flat-unbounded": lambda _: UnboundedFlatAgent(stack, cfg.seed, memory),
        "random": lambda _: RandomAgent(spec, cfg.seed),
        "oracle": oracle_agent,
    }


class _LayoutGraphs:
    """Stands in for a PoseGraph: the oracle agent looks the current layout's graph up."""

    def __init__(self, oracle: LayoutOracle) -> None:
        self.oracle, self.layout_seed = oracle, 0

    def path(self, pose: tuple[int, ...], goal: tuple[int, int]) -> list[int]:
        return self.oracle.graph(self.layout_seed).path(pose, goal)

    def pose_of(self, obs: np.ndarray) -> tuple[int, ...]:
        return self.oracle.graph(self.layout_seed).pose_of(obs)


class Episodes(Protocol):
    """An env family's evaluation: agent factories and one episode of an agent on a task."""

    def factories(self, stack: torch.nn.Module, cfg: EvalConfig,
                  memory: torch.Tensor | None = None) -> dict[str, Callable[["Budget"], Agent]]: ...  # fmt: skip

    def run(self, agent: Agent, task: object, max_steps: int) -> EpisodeRecord: ...


class GridEpisodes:
    """MiniGrid episodes (:func:`run_episode`) in the layouts of ``env_id``."""

    def __init__(self, stack: torch.nn.Module, env_id: str) -> None:
        self.env_actions = stack.action_spec.env_actions
        self.oracle = LayoutOracle(env_id, env_actions=self.env_actions)

    def factories(self, stack: torch.nn.Module, cfg: EvalConfig,
                  memory: torch.Tensor | None = None) -> dict[str, Callable[["Budget"], Agent]]:  # fmt: skip
        return build_agents(stack, self.oracle, cfg, memory)

    def run(self, agent: Agent, task: Task, max_steps: int) -> EpisodeRecord:
        if isinstance(agent, OracleAgent):
            agent.graph.layout_seed = task.layout_seed
        return run_episode(agent, self.oracle, task, max_steps, self.env_actions)


def episodes_for(stack: torch.nn.Module, env_id: str) -> Episodes:
    """The evaluation of ``env_id``'s family: PointMaze (needs the ``nav`` extra) or MiniGrid."""
    if is_pointmaze(env_id):
        from hjepa.experiments.evaluate_pointmaze import PointMazeEpisodes

        return PointMazeEpisodes(stack, env_id)
    return GridEpisodes(stack, env_id)


def suite_tasks(env_id: str, layout_seeds: Sequence[int], per_bin: int, bins: Bins, seed: int,
                env_actions: Sequence[int] = POSE_ACTIONS) -> list[Task | MazeTask]:  # fmt: skip
    """Seeded evaluation tasks of ``env_id``, stratified by oracle distance.

    MiniGrid: :func:`~hjepa.envs.oracle.make_tasks` over ``layout_seeds``. PointMaze: tasks
    drawn over the maze's free cells (:func:`~hjepa.envs.maze_oracle.make_maze_tasks`), or,
    for a maze with its own evaluation tasks (OGBench giant), those tasks, ``per_bin``
    jittered episodes each. ``env_actions``: MiniGrid's actions (with toggle, closed doors cost one).
    """
    if not is_pointmaze(env_id):
        return make_tasks(env_id, layout_seeds, per_bin, bins, seed=seed, env_actions=env_actions)
    info = maze_info(env_id)
    if info.tasks:
        return fixed_maze_tasks(env_id, info.maze, info.tasks, bins, per_bin, seed)
    return make_maze_tasks(env_id, info.maze, per_bin, bins, seed)


def evaluate_agents(stack: torch.nn.Module, env_id: str, tasks: Sequence[Task | MazeTask], bins: Sequence[str],
                    cfg: EvalConfig, progress: bool = True,
                    memory: torch.Tensor | None = None) -> tuple[dict[str, dict], list[EpisodeRecord]]:  # fmt: skip
    """Every agent of ``cfg.agents`` on every task; returns per-agent summaries and records.
    ``memory``: observations for the "graph" planner (:func:`planning_memory`)."""
    check_agents(cfg.agents)
    if "flat" in cfg.agents and "hjepa" not in cfg.agents[: cfg.agents.index("flat")]:
        raise ConfigError("The flat agent's budget is the hierarchy's: list 'hjepa' before 'flat'.")
    episodes = episodes_for(stack, env_id)
    factories = episodes.factories(stack, cfg, memory)
    records: list[EpisodeRecord] = []
    budget = Budget(0.0, 0.0)
    with Progress(disable=not progress, transient=True) as bar:
        for name in cfg.agents:
            agent = factories[name](budget)
            task_bar = bar.add_task(f"evaluating {name}", total=len(tasks))
            for task in tasks:
                records.append(episodes.run(agent, task, cfg.max_steps))
                bar.advance(task_bar)
            if name == "hjepa":
                budget = Budget.of([r for r in records if r.agent == "hjepa"], stack.action_spec.repeat)
    return summarise_by_agent(records, bins), records


def planning_memory(data: object, cfg: EvalConfig) -> torch.Tensor | None:
    """What the configurator's planners read from the dataset ``data`` (an OfflineDataset):
    :func:`~hjepa.planning.memory.memory_observations`."""
    return memory_observations(data.obs, cfg.configurator.planner, cfg.configurator.upper, cfg.seed)


class Budget(NamedTuple):
    """The hierarchy's measured planning cost, which the flat agent gets: predictor calls per
    model step, and per episode, the most any of its episodes took (a flat "imagine" agent
    spends its episode's at once, before it knows how long the episode will be)."""

    per_step: float
    per_episode: float

    @classmethod
    def of(cls, records: Sequence[EpisodeRecord], repeat: int = 1) -> "Budget":
        per_episode = max((r.predictor_calls for r in records), default=0.0)
        return cls(calls_per_decision(records, repeat), per_episode)


def calls_per_decision(records: Sequence[EpisodeRecord], repeat: int = 1) -> float:
    """Predictor calls per model step (the flat agent's budget). With action repeat k an
    episode of n env steps took ceil(n / k) model steps: every action is held k env steps
    but the last, cut short by success or the step limit. Matching per model step matches
    per env step too, since both agents hold their actions alike."""
    decisions = sum(-(-r.steps // repeat) for r in records)
    return sum(r.predictor_calls for r in records) / max(decisions, 1)
