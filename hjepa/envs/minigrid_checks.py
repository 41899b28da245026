"""Whether a MiniGrid env is a task hjepa can learn and navigate: reach a goal cell in a static
layout that the observation shows whole.

hjepa's collectors, oracle and planners read the env's grid, treat it as fixed between the
agent's own actions, and judge success as standing on the ``Goal`` square. An env that breaks
one of these would be collected and evaluated without complaint and give meaningless numbers,
so :func:`check_goal_reaching` turns each case into one clear error before any work starts.
"""

from __future__ import annotations

import gymnasium
import numpy as np
from minigrid.minigrid_env import MiniGridEnv

from hjepa.envs.minigrid_nav import make_minigrid
from hjepa.errors import NotNavigationEnvError

_TURN_LEFT = 0  # MiniGrid's Actions.left: changes nothing in the grid
_TURNS = 4  # agent-only steps over which a static grid must stay unchanged
_TASK = "hjepa navigates MiniGrid envs whose task is to reach a Goal square in a static grid"


def check_goal_reaching(env_id: str, layout_seed: int = 0) -> None:
    """Raise unless ``env_id`` is a static, goal-reaching MiniGrid grid world observed as a grid.

    Args:
        env_id: a gymnasium id.
        layout_seed: the reset seed of the layout inspected.

    Raises:
        UnknownEnvError: gymnasium does not know ``env_id``.
        NotNavigationEnvError: the env is not a MiniGrid grid world; its observation is not the
            grid (no ``image`` grid encoding, e.g. wrapped to pixels); its grid holds no ``Goal``
            after reset (e.g. a pickup mission such as ``MiniGrid-Fetch-*``); or its grid changes
            while the agent only turns (moving obstacles, e.g. ``MiniGrid-Dynamic-Obstacles-*``).
    """
    env = make_minigrid(env_id)
    try:
        _check_observation(env_id, env)
        env.reset(seed=int(layout_seed))
        _check_goal(env_id, env)
        _check_static(env_id, env)
    finally:
        env.close()


def _check_observation(env_id: str, raw: MiniGridEnv) -> None:
    """The registered env (wrappers included) must observe MiniGrid's dict whose ``image`` is a
    grid encoding: the agent's view (``agent_view_size`` square) or the whole grid, one cell per
    entry (a rendered image has ``tile_size`` pixels per cell)."""
    env = gymnasium.make(env_id)
    try:
        space = env.observation_space
    finally:
        env.close()
    image = space.spaces.get("image") if isinstance(space, gymnasium.spaces.Dict) else None
    grids = {(raw.agent_view_size, raw.agent_view_size, 3), (raw.width, raw.height, 3)}
    if isinstance(image, gymnasium.spaces.Box) and image.dtype == np.uint8 and image.shape in grids:
        return
    kind = type(space).__name__
    seen = f"its 'image' is {image}" if image is not None else f"it observes a {kind} without an 'image'"
    raise NotNavigationEnvError(
        f"'{env_id}' does not observe the grid: {seen}, where hjepa reads MiniGrid's dict whose 'image' "
        f"encodes one (object, colour, state) per cell, of shape {' or '.join(map(str, sorted(grids)))}. "
        f"{_TASK}; register the env without wrappers that replace its observation."
    )


def _check_goal(env_id: str, env: MiniGridEnv) -> None:
    """After reset the grid must hold a ``Goal`` square: the cell the task is to reach."""
    if any(cell is not None and cell.type == "goal" for cell in env.grid.grid):
        return
    raise NotNavigationEnvError(
        f"'{env_id}' is not a goal-reaching task: after reset its grid holds no Goal square "
        f"(its mission: '{env.mission}'). {_TASK}, e.g. MiniGrid-FourRooms-v0, MiniGrid-MultiRoom-*, "
        "MiniGrid-Empty-*."
    )


def _check_static(env_id: str, env: MiniGridEnv) -> None:
    """The grid must not change while the agent only turns: no moving obstacles."""
    before = env.grid.encode()
    for _ in range(_TURNS):
        env.step(_TURN_LEFT)
        if not np.array_equal(env.grid.encode(), before):
            raise NotNavigationEnvError(
                f"'{env_id}' has moving objects: its grid changed while the agent only turned "
                f"(e.g. the balls of MiniGrid-Dynamic-Obstacles-*). {_TASK}, where the only changes "
                "are the agent's own (a door it toggles)."
            )
