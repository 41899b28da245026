"""``hjepa/PointMaze_Giant-v0``: OGBench's giant maze and tasks on gymnasium-robotics' PointMaze.

Imported by gymnasium's registry only (``gymnasium.make``), so that importing hjepa never
needs the ``nav`` extra. See :mod:`hjepa.envs.pointmaze` for where the map and the five
tasks come from and how this env differs from OGBench's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hjepa.envs.pointmaze import GIANT, GIANT_TASKS, require_nav
from hjepa.errors import InvalidGoalError

require_nav()

from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv  # noqa: E402  -- after the extra's check


class PointMazeGiantEnv(PointMazeEnv):
    """PointMaze on OGBench's giant map; ``reset(options={"task_id": i})`` (i = 1..5) starts
    OGBench's evaluation task i (start and goal cells, jittered as the env jitters them)."""

    def __init__(self, **kwargs: Any) -> None:
        grid = [[1 if c == "#" else 0 for c in row] for row in GIANT.rows]
        super().__init__(maze_map=grid, **kwargs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        options = dict(options or {})
        task_id = options.pop("task_id", None)
        if task_id is not None:
            if not 1 <= int(task_id) <= len(GIANT_TASKS):
                raise InvalidGoalError(f"task_id must be in 1..{len(GIANT_TASKS)}, got {task_id}.")
            start, goal = GIANT_TASKS[int(task_id) - 1]
            options.update(reset_cell=np.array(start), goal_cell=np.array(goal))
        return super().reset(seed=seed, options=options or None)
