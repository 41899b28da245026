"""Environments hjepa navigates: MiniGrid grid worlds (plus our MazeRooms) and their tools.

Importing this package registers MiniGrid's ids (through ``import minigrid``) and ours
(``hjepa/MazeRooms-v0``, ``-8-v0``, ``-16-v0``; ``hjepa/PointMaze_Giant-v0``, whose module needs the ``nav`` extra
only when it is made) with gymnasium, so ``gymnasium.make`` and :func:`make_minigrid` know them.
"""

from __future__ import annotations

import gymnasium
import minigrid  # noqa: F401  -- registers the MiniGrid-* ids

from hjepa.envs.mazerooms import ENV_ID as MAZEROOMS_ID
from hjepa.envs.mazerooms import SIZED_IDS as MAZEROOMS_SIZED_IDS
from hjepa.envs.mazerooms import MazeRoomsEnv
from hjepa.envs.pointmaze import GIANT_ID as POINTMAZE_GIANT_ID


def _register() -> None:
    # Guarded so that re-importing (e.g. importlib.reload in tests) does not warn about overrides.
    if MAZEROOMS_ID not in gymnasium.registry:
        gymnasium.register(id=MAZEROOMS_ID, entry_point="hjepa.envs.mazerooms:MazeRoomsEnv")
    for rooms, env_id in MAZEROOMS_SIZED_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point="hjepa.envs.mazerooms:MazeRoomsEnv", kwargs={"rooms": rooms})
    if POINTMAZE_GIANT_ID not in gymnasium.registry:  # its module needs the `nav` extra only when made
        gymnasium.register(id=POINTMAZE_GIANT_ID, entry_point="hjepa.envs.pointmaze_giant:PointMazeGiantEnv",
                           max_episode_steps=1000)  # fmt: skip


_register()

from hjepa.envs.layout_cache import LayoutCache, layout_nav  # noqa: E402  -- after registration
from hjepa.envs.minigrid_nav import ACTIONS, GridNav, action_spec, make_minigrid  # noqa: E402
from hjepa.envs.raster import grid_to_rgb  # noqa: E402

__all__ = [
    "ACTIONS",
    "GridNav",
    "LayoutCache",
    "MAZEROOMS_ID",
    "MazeRoomsEnv",
    "action_spec",
    "grid_to_rgb",
    "layout_nav",
    "make_minigrid",
]
