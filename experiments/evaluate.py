"""Run agents on seeded, distance-binned navigation tasks and summarise them (BENCHMARK.md).

Episodes run in :class:`~hjepa.envs.minigrid_nav.GridNav`, whose observations are identical
to MiniGrid's ``FullyObsWrapper`` (tested), with MiniGrid's own success criterion: standing on
the goal cell. The agent sees the observation and the goal observation only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from rich.progress import Progress

from hjepa.agents import Agent, FlatAgent, HJEPAAgent, OracleAgent, RandomAgent
from hjepa.agents.base import AGENTS
from hjepa.envs.oracle import LayoutOracle, Task, goal_observation
from hjepa.errors import ConfigError, UnknownNameError
from hjepa.metrics import EpisodeRecord, summarise_by_agent
from hjepa.planning.configurator import RuleConfigurator


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

    agents: tuple[str, ...] = AGENTS
    max_steps: int = 100
    flat_horizon: int = 8
    configurator: RuleConfigurator = RuleConfigurator()
    seed: int = 0


def check_agents(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in AGENTS]
    if unknown:
        raise UnknownNameError(f"Unknown agent(s) {unknown}. Agents: {', '.join(AGENTS)}.")


def run_episode(agent: Agent, oracle: LayoutOracle, task: Task, max_steps: int,
                env_actions: Sequence[int]) -> EpisodeRecord:  # fmt: skip
    """One episode of ``agent`` on ``task``; path length counts actions taken.

    ``env_actions`` maps the agent's action index to the MiniGrid action id.
    """
    nav = oracle.nav(task.layout_seed)
    nav.set_pose(*task.start)
    goal_obs = goal_observation(nav, task.goal)
    agent.reset(nav.observation(), goal_obs)
    plan_ms, steps, success = [], 0, nav.pose[:2] == tuple(task.goal)
    while not success and steps < max_steps:
        t0 = time.perf_counter()
        a = agent.act(nav.observation())
        plan_ms.append((time.perf_counter() - t0) * 1e3)
        nav.step(env_actions[a])
        steps += 1
        success = nav.pose[:2] == tuple(task.goal)
    return EpisodeRecord(agent=agent.name, bin=task.bin, success=bool(success), steps=steps, path_len=float(steps),
                         oracle_len=float(task.distance), predictor_calls=agent.predictor_calls, plan_ms=plan_ms,
                         extra={"layout_seed": task.layout_seed, "start": list(task.start), "goal": list(task.goal)})  # fmt: skip


def build_agents(stack: torch.nn.Module, oracle: LayoutOracle, cfg: EvalConfig) -> dict[str, Callable[[float], Agent]]:
    """Factories by name; each takes the budget (hjepa's calls per step, for "flat")."""
    spec = stack.action_spec

    def oracle_agent(_: float) -> Agent:
        return OracleAgent(_LayoutGraphs(oracle), spec)

    return {
        "hjepa": lambda _: HJEPAAgent(stack, cfg.configurator, cfg.seed),
        "flat": lambda budget: FlatAgent(stack, budget, cfg.flat_horizon, cfg.seed, cfg.configurator.use_critic),
        "random": lambda _: RandomAgent(spec, cfg.seed),
        "oracle": oracle_agent,
    }


class _LayoutGraphs:
    """Stands in for a PoseGraph: the oracle agent looks the current layout's graph up."""

    def __init__(self, oracle: LayoutOracle) -> None:
        self.oracle, self.layout_seed = oracle, 0

    def path(self, pose: tuple[int, int, int], goal: tuple[int, int]) -> list[int]:
        return self.oracle.graph(self.layout_seed).path(pose, goal)


def evaluate_agents(stack: torch.nn.Module, env_id: str, tasks: Sequence[Task], bins: Sequence[str],
                    cfg: EvalConfig, progress: bool = True) -> tuple[dict[str, dict], list[EpisodeRecord]]:  # fmt: skip
    """Every agent of ``cfg.agents`` on every task; returns per-agent summaries and records."""
    check_agents(cfg.agents)
    if "flat" in cfg.agents and "hjepa" not in cfg.agents[: cfg.agents.index("flat")]:
        raise ConfigError("The flat agent's budget is the hierarchy's: list 'hjepa' before 'flat'.")
    oracle = LayoutOracle(env_id)
    factories = build_agents(stack, oracle, cfg)
    records: list[EpisodeRecord] = []
    budget = 0.0
    with Progress(disable=not progress, transient=True) as bar:
        for name in cfg.agents:
            agent = factories[name](budget)
            task_bar = bar.add_task(f"evaluating {name}", total=len(tasks))
            for task in tasks:
                if isinstance(agent, OracleAgent):
                    agent.graph.layout_seed = task.layout_seed
                records.append(run_episode(agent, oracle, task, cfg.max_steps, stack.action_spec.env_actions))
                bar.advance(task_bar)
            if name == "hjepa":
                budget = _calls_per_step([r for r in records if r.agent == "hjepa"])
    return summarise_by_agent(records, bins), records


def _calls_per_step(records: Sequence[EpisodeRecord]) -> float:
    steps = sum(r.steps for r in records)
    return sum(r.predictor_calls for r in records) / max(steps, 1)
