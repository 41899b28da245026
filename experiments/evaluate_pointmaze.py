"""PointMaze episodes for ``hjepa evaluate`` / ``hjepa bench`` (the continuous suites of docs/benchmark.md).

An episode places the ball at rest at the task's start, gives the agent the observation and
the goal observation (the observation at the goal, at rest), steps the env's MuJoCo model
with the agent's forces (:class:`~hjepa.envs.pointmaze.PointMazeSim`, the same dynamics as
``env.step``) and ends on the env's own success criterion (within 0.45 m of the goal) or at
``max_steps``. Path lengths are metres travelled, against the oracle's geodesic metres.

A model with action repeat k (``ActionSpec.repeat``) acts every k env steps: each force is
held for k physics steps, success is checked after each of them, and ``steps`` and
``max_steps`` count env steps. Planning time is amortised: each env step records its share
(1/k) of the plan that drove it.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from hjepa.agents import Agent, FlatAgent, HJEPAAgent, PointMazeOracleAgent, RandomAgent
from hjepa.envs.maze_oracle import MazeOracle, MazeTask
from hjepa.envs.pointmaze import Observer, PointMazeSim
from hjepa.errors import SpecMismatchError
from hjepa.metrics import EpisodeRecord


class PointMazeEpisodes:
    """Runs agents on one maze; the observation kind follows the model's obs spec.

    Args:
        stack: the trained stack (its obs spec picks "state" or "image", and the image's
            pixels per cell).
        env_id: a PointMaze env id.
    """

    def __init__(self, stack: torch.nn.Module, env_id: str) -> None:
        self.sim = PointMazeSim(env_id)
        self.oracle = MazeOracle(self.sim.maze)
        self.observer = observer_for(stack.obs_spec, self.sim)
        self.repeat = stack.action_spec.repeat

    def factories(self, stack: torch.nn.Module, cfg: object,
                  memory: torch.Tensor | None = None) -> dict[str, Callable[["Budget"], Agent]]:  # fmt: skip
        """Agent factories by name; each takes the :class:`~hjepa.experiments.evaluate.Budget`
        (the hierarchy's measured cost; "flat" plans with ``budget.per_step`` calls a step).
        ``memory`` serves the "graph" planner of the levels above 0 (latent macro-actions)."""
        conf = cfg.configurator
        return {
            "hjepa": lambda _: HJEPAAgent(stack, conf, cfg.seed, memory),
            "flat": lambda budget: FlatAgent(stack, budget.per_step, cfg.flat_horizon, cfg.seed, conf.use_critic,
                                             conf.continuous_planner, memory=memory),  # fmt: skip
            "random": lambda _: RandomAgent(stack.action_spec, cfg.seed),
            "oracle": lambda _: PointMazeOracleAgent(self.sim),
        }

    def _hold(self, action: np.ndarray, left: int) -> tuple[int, bool, float]:
        """Apply ``action`` for up to ``repeat`` env steps (at most ``left``), stopping on
        success; returns (env steps taken, success, metres moved)."""
        sim, moved = self.sim, 0.0
        for held in range(1, min(self.repeat, left) + 1):
            before = sim.xy
            sim.step(action)
            moved += float(np.linalg.norm(sim.xy - before))
            if sim.success():
                return held, True, moved
        return held, False, moved

    def run(self, agent: Agent, task: MazeTask, max_steps: int) -> EpisodeRecord:
        """One episode of ``agent`` on ``task``; the path length is in metres.

        Raises:
            InvalidGoalError: the task's start or goal is outside the maze or in a wall.
        """
        sim, observe = self.sim, self.observer
        self.oracle.cell_of(task.start, "start")
        self.oracle.cell_of(task.goal, "goal")
        sim.set_state(task.start)
        sim.goal = np.asarray(task.goal, dtype=np.float64)
        agent.reset(observe(sim.state), observe.at_rest(task.goal))
        plan_ms, steps, path, success = [], 0, 0.0, sim.success()
        while not success and steps < max_steps:
            t0 = time.perf_counter()
            action = agent.act(observe(sim.state))
            ms = (time.perf_counter() - t0) * 1e3
            held, success, moved = self._hold(action, max_steps - steps)
            plan_ms += [ms / held] * held
            steps, path = steps + held, path + moved
        final = float(np.linalg.norm(sim.xy - sim.goal))
        return EpisodeRecord(agent=agent.name, bin=task.bin, success=bool(success), steps=steps, path_len=path,
                             oracle_len=float(task.distance), predictor_calls=agent.predictor_calls, plan_ms=plan_ms,
                             extra={"start": list(task.start), "goal": list(task.goal), "task_id": task.task_id,
                                    "final_distance": round(final, 4)})  # fmt: skip


def observer_for(obs_spec: object, sim: PointMazeSim) -> Observer:
    """The :class:`Observer` producing observations of ``obs_spec`` in ``sim``'s maze."""
    rows, cols = sim.maze.shape
    if obs_spec.kind == "state":
        observer = Observer(sim.maze, "state")
    elif obs_spec.kind == "image" and obs_spec.shape[0] % rows == 0:
        observer = Observer(sim.maze, "image", obs_spec.shape[0] // rows)
    else:
        observer = None
    if observer is None or observer.spec != obs_spec:
        raise SpecMismatchError(f"The model takes observations {obs_spec.to_dict()}, which {sim.info.env_id} "
                                f"({rows} x {cols} cells) does not produce: PointMaze observations are the state "
                                "(4,) float32 or an image (rows * tile, cols * tile, 3) uint8.")  # fmt: skip
    return observer
