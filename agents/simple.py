"""Baselines: uniform random actions, and the oracle (evaluation only: it reads the map)."""

from __future__ import annotations

import numpy as np

from hjepa.agents.base import Agent
from hjepa.envs.oracle import PoseGraph, agent_pose
from hjepa.specs import ActionSpec


class RandomAgent(Agent):
    """Uniform random actions (indices, or vectors uniform in a continuous spec's box) from a
    generator seeded once per agent: successive episodes differ, and a run is reproducible."""

    name = "random"

    def __init__(self, action_spec: ActionSpec, seed: int = 0) -> None:
        super().__init__()
        self.spec = action_spec
        self.n = action_spec.n
        self.rng = np.random.default_rng(seed)

    def _reset(self, obs: np.ndarray, goal_obs: np.ndarray) -> None:
        pass

    def _act(self, obs: np.ndarray) -> int | np.ndarray:
        if self.spec.is_discrete:
            return int(self.rng.integers(self.n))
        return self.rng.uniform(self.spec.low, self.spec.high, size=self.spec.dim).astype(np.float32)


class OracleAgent(Agent):
    """Follows a shortest path of the true pose graph (privileged: evaluation only).

    It reads its pose from the symbolic observation and the goal cell from the goal
    observation, and replans from wherever it is every step (facing a door it opened, from
    the graph's opened pose: :meth:`PoseGraph.pose_of`).
    """

    name = "oracle"

    def __init__(self, graph: PoseGraph, action_spec: ActionSpec) -> None:
        super().__init__()
        self.graph = graph
        self.index = {env_id: i for i, env_id in enumerate(action_spec.env_actions)}
        self.goal: tuple[int, int] = (0, 0)

    def _reset(self, obs: np.ndarray, goal_obs: np.ndarray) -> None:
        self.goal = agent_pose(goal_obs)[:2]

    def _act(self, obs: np.ndarray) -> int:
        path = self.graph.path(self.graph.pose_of(obs), self.goal)
        return self.index[path[0]] if path else 0
