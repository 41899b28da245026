"""The PointMaze oracle (evaluation only): it reads the simulator's state and the maze map.

It follows the oracle's shortest cell path (:class:`~hjepa.envs.maze_oracle.MazeOracle`) with
a simple controller: aim at the farthest waypoint of the path (next cell centres, then the
goal) that a straight line reaches with ``clearance`` from every wall, at the speed from
which it could still brake to rest there (plus ``corner_speed`` at an intermediate
waypoint), and push the velocity toward that with a proportional force.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hjepa.agents.base import Agent
from hjepa.envs.maze_oracle import MazeMap, MazeOracle
from hjepa.envs.pointmaze import MAX_SPEED, PointMazeSim
from hjepa.errors import ConfigError


@dataclass(frozen=True)
class Steering:
    """Gains of the oracle's controller (the ball accelerates at ~24 m/s^2 under full force)."""

    clearance: float = 0.2
    """Metres a line of sight keeps from walls (the ball's radius is 0.1 m)."""
    cruise: float = MAX_SPEED
    """Top speed aimed at, m/s."""
    corner_speed: float = 2.5
    """Speed added when the target is a corner of the path rather than the goal, m/s."""
    brake: float = 12.0
    """Deceleration the speed profile plans with, m/s^2."""
    gain: float = 2.0
    """Force per m/s of velocity error (clipped to [-1, 1])."""
    step: float = 0.05
    """Spacing of the points a line-of-sight test checks, metres."""


def line_of_sight(maze: MazeMap, a: np.ndarray, b: np.ndarray, clearance: float, step: float = 0.05) -> bool:
    """Whether a disk of radius ``clearance`` moves from ``a`` to ``b`` in a straight line
    without touching a wall cell (its bounding square is tested at points ``step`` apart)."""
    n = max(2, int(np.ceil(np.linalg.norm(b - a) / step)) + 1)
    pts = a[None] + np.linspace(0.0, 1.0, n)[:, None] * (b - a)[None]  # "n 2"
    corners = pts[:, None, :] + clearance * np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]])[None]
    (w, h), s = maze.extent, maze.scaling
    i = np.floor((h - corners[..., 1]) / s).astype(np.int64)
    j = np.floor((corners[..., 0] + w) / s).astype(np.int64)
    rows, cols = maze.shape
    inside = (i >= 0) & (i < rows) & (j >= 0) & (j < cols)
    if not inside.all():
        return False
    return not maze.walls[i, j].any()


def steer(oracle: MazeOracle, state: np.ndarray, goal: np.ndarray, cfg: Steering = Steering()) -> np.ndarray:
    """The oracle controller's force ``(2,)`` float32 at ``state (x, y, vx, vy)`` toward ``goal``."""
    xy, v = state[:2], state[2:]
    pts = oracle.waypoints(xy, goal)
    k = 1
    while k + 1 < len(pts) and line_of_sight(oracle.maze, xy, pts[k + 1], cfg.clearance, cfg.step):
        k += 1
    offset = pts[k] - xy
    dist = float(np.linalg.norm(offset))
    if dist < 1e-9:
        return np.clip(-cfg.gain * v, -1.0, 1.0).astype(np.float32)
    speed = np.sqrt(2.0 * cfg.brake * dist) + (cfg.corner_speed if k + 1 < len(pts) else 0.0)
    desired = min(speed, cfg.cruise) * offset / dist
    return np.clip(cfg.gain * (desired - v), -1.0, 1.0).astype(np.float32)


class PointMazeOracleAgent(Agent):
    """Steers along the oracle's shortest path (privileged: evaluation only).

    It reads the ball's state from ``sim`` (an image observation has no velocity) and the
    goal from ``sim.goal``, which the evaluation sets for each task.
    """

    name = "oracle"

    def __init__(self, sim: PointMazeSim, steering: Steering = Steering()) -> None:
        super().__init__()
        self.sim, self.steering = sim, steering
        self.oracle = MazeOracle(sim.maze)
        self.goal = np.zeros(2)

    def _reset(self, obs: np.ndarray, goal_obs: np.ndarray) -> None:
        if self.sim.goal is None:
            raise ConfigError("The PointMaze oracle agent reads the goal from its simulator: set sim.goal first.")
        self.goal = np.asarray(self.sim.goal, dtype=np.float64)

    def _act(self, obs: np.ndarray) -> np.ndarray:
        return steer(self.oracle, self.sim.state, self.goal, self.steering)
