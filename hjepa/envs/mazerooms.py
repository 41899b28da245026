"""MazeRooms: a grid of rooms joined by doorways on a random spanning tree.

FourRooms' paths are short (at most ~30 actions). Opening one gap in every internal wall of
a 4x4 grid of rooms still gives paths of at most ~68 actions; opening only the walls of a
random spanning tree of the rooms makes a true maze with paths of 60-160 actions, the range
where a flat planner fails and a hierarchy is needed.
"""

from __future__ import annotations

from typing import Any

from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Goal
from minigrid.minigrid_env import MiniGridEnv

ENV_ID = "hjepa/MazeRooms-v0"
SIZED_IDS = {8: "hjepa/MazeRooms-8-v0", 16: "hjepa/MazeRooms-16-v0"}
"""MazeRooms with 8 x 8 rooms (65 x 65 cells) and 16 x 16 rooms (129 x 129 cells)."""


class MazeRoomsEnv(MiniGridEnv):
    """
    ## Description

    A ``rooms`` x ``rooms`` grid of square rooms of ``room_size`` x ``room_size`` interior cells,
    separated by one-cell walls (4 x 8 + 1 = 33 cells a side by default). A wall between two
    neighbouring rooms has a one-cell doorway (at a random position along the wall) only if it
    lies on a random spanning tree of the rooms: every room is reachable and there is exactly
    one route between two rooms, ``rooms**2 - 1`` doorways in all. ``reset(seed=s)`` fixes the
    doorways, the start pose and the goal, as in FourRooms.

    ## Mission Space

    "reach the goal"

    ## Action Space

    | Num | Name         | Action       |
    |-----|--------------|--------------|
    | 0   | left         | Turn left    |
    | 1   | right        | Turn right   |
    | 2   | forward      | Move forward |
    | 3   | pickup       | Unused       |
    | 4   | drop         | Unused       |
    | 5   | toggle       | Unused       |
    | 6   | done         | Unused       |

    ## Observation Encoding

    - Each tile is encoded as a 3 dimensional tuple: `(OBJECT_IDX, COLOR_IDX, STATE)`
    - `OBJECT_TO_IDX` and `COLOR_TO_IDX` mapping can be found in `minigrid/core/constants.py`
    - Only walls (2), empty cells (1) and the goal (8) occur; `STATE` is always 0.

    ## Rewards

    A reward of '1 - 0.9 * (step_count / max_steps)' is given for success, and '0' for failure.

    ## Termination

    The episode ends if any one of the following conditions is met:

    1. The agent reaches the goal.
    2. Timeout (see `max_steps`, default 4 * size * size).

    ## Registered Configurations

    - `hjepa/MazeRooms-v0` (accepts `rooms` and `room_size`; 4 x 4 rooms, 33 x 33 cells)
    - `hjepa/MazeRooms-8-v0` (8 x 8 rooms, 65 x 65 cells)
    - `hjepa/MazeRooms-16-v0` (16 x 16 rooms, 129 x 129 cells)
    """

    def __init__(self, rooms: int = 4, room_size: int = 7, max_steps: int | None = None, **kwargs: Any) -> None:
        """Args: rooms per side, interior cells per room side, step limit (default 4 * size**2)."""
        if rooms < 1 or room_size < 1:
            raise ValueError(f"MazeRooms needs rooms >= 1 and room_size >= 1, got {rooms} and {room_size}.")
        self.rooms, self.room_size = int(rooms), int(room_size)
        self.size = self.rooms * (self.room_size + 1) + 1
        super().__init__(
            mission_space=MissionSpace(mission_func=self._gen_mission),
            width=self.size,
            height=self.size,
            max_steps=max_steps if max_steps is not None else 4 * self.size * self.size,
            **kwargs,
        )

    @staticmethod
    def _gen_mission() -> str:
        return "reach the goal"

    def _spanning_tree(self) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """Edges of a uniform random spanning tree of the rooms (Aldous-Broder random walk)."""
        n = self.rooms
        current = (self._rand_int(0, n), self._rand_int(0, n))
        visited, edges = {current}, []
        while len(visited) < n * n:
            # Uniforms drawn in blocks: one np_random call per step would dominate reset().
            for u in self.np_random.random(4 * n * n):
                i, j = current
                steps = [(a, b) for a, b in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)) if 0 <= a < n and 0 <= b < n]
                nxt = steps[int(u * len(steps))]
                if nxt not in visited:
                    visited.add(nxt)
                    edges.append((current, nxt))
                    if len(visited) == n * n:
                        break
                current = nxt
        return edges

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        step = self.room_size + 1
        # Every line x = k * step (and y = k * step) is a wall; doorways are cut into it below.
        for k in range(self.rooms + 1):
            self.grid.vert_wall(k * step, 0, height)
            self.grid.horz_wall(0, k * step, width)
        for (i, j), (a, b) in self._spanning_tree():
            if i != a:  # horizontal neighbours share a vertical wall at x = max(i, a) * step
                x, y = max(i, a) * step, j * step + 1 + self._rand_int(0, self.room_size)
            else:
                x, y = i * step + 1 + self._rand_int(0, self.room_size), max(j, b) * step
            self.grid.set(x, y, None)
        self.place_agent()
        self.place_obj(Goal())
        self.mission = self._gen_mission()
