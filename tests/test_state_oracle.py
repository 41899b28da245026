"""Tests of the oracle on layouts with keys, locked doors and lava: its paths, followed in
MiniGrid itself, reach the goal in exactly their length and never step into lava."""

from __future__ import annotations

import numpy as np
import pytest
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Door, Goal, Key, Lava, Wall
from minigrid.minigrid_env import MiniGridEnv

from hjepa.envs import GridNav
from hjepa.envs.oracle import PoseGraph
from hjepa.envs.state_oracle import StateGraph, needs_state_graph
from hjepa.errors import InvalidGoalError

LEFT, RIGHT, FORWARD, PICKUP, TOGGLE = 0, 1, 2, 3, 5
ALL = (LEFT, RIGHT, FORWARD, PICKUP, TOGGLE)

# Key room on the left, goal room on the right behind a yellow locked door.
DOOR_KEY = ["#######",
            "#..#..#",
            "#K.L.G#",
            "#..#..#",
            "#######"]  # fmt: skip
# A goal ringed by lava: only a step into lava reaches it.
LAVA = ["#######",
        "#.....#",
        "#.~~~.#",
        "#.~G~.#",
        "#.~~~.#",
        "#.....#",
        "#######"]  # fmt: skip


class PictureEnv(MiniGridEnv):
    """A MiniGrid env built from a picture: ``#`` wall, ``K`` yellow key, ``L`` yellow locked
    door, ``D`` closed yellow door, ``~`` lava, ``G`` goal, ``.`` floor; ``rows[y][x]``."""

    def __init__(self, rows: list[str], start: tuple[int, int, int]) -> None:
        self.rows, self.start = rows, start
        super().__init__(mission_space=MissionSpace(mission_func=lambda: "get to the goal"), width=len(rows[0]),
                         height=len(rows), max_steps=1000)  # fmt: skip

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        make = {"#": Wall, "K": lambda: Key("yellow"), "L": lambda: Door("yellow", is_locked=True),
                "D": lambda: Door("yellow"), "~": Lava, "G": Goal}  # fmt: skip
        for y, row in enumerate(self.rows):
            for x, ch in enumerate(row):
                if ch in make:
                    self.grid.set(x, y, make[ch]())
        self.agent_pos, self.agent_dir = self.start[:2], self.start[2]


def _layout(rows: list[str], start: tuple[int, int, int]) -> tuple[PictureEnv, GridNav]:
    env = PictureEnv(rows, start)
    env.reset(seed=0)
    return env, GridNav.from_env(env, remove_goal=True)


def _follow(env: MiniGridEnv, path: list[int]) -> tuple[int, bool, bool]:
    """Steps taken until MiniGrid ends the episode, whether it ended with a reward, and whether
    the agent ever stood on lava."""
    for t, a in enumerate(path, start=1):
        _, reward, terminated, _, _ = env.step(a)
        on_lava = env.grid.get(*env.agent_pos) is not None and env.grid.get(*env.agent_pos).type == "lava"
        if terminated:
            return t, reward > 0, on_lava
    return len(path), False, False


@pytest.mark.parametrize("start", [(1, 1, 0), (2, 3, 2), (2, 2, 2)])
def test_key_and_locked_door_paths_reach_the_goal_in_exactly_their_length(start: tuple[int, int, int]) -> None:
    env, nav = _layout(DOOR_KEY, start)
    assert needs_state_graph(nav.encoding)
    graph = StateGraph(nav, ALL)
    path = graph.path(start, (5, 2))
    assert path.count(PICKUP) == 1 and path.count(TOGGLE) == 1  # the key, then the door
    assert path.index(PICKUP) < path.index(TOGGLE)
    steps, reached, _ = _follow(env, path)
    assert reached and steps == len(path) == graph.distance(start, (5, 2))


def test_without_pickup_the_goal_behind_a_locked_door_is_unreachable() -> None:
    _, nav = _layout(DOOR_KEY, (1, 1, 0))
    with pytest.raises(InvalidGoalError, match="cannot be reached"):
        StateGraph(nav, (LEFT, RIGHT, FORWARD, TOGGLE)).distance((1, 1, 0), (5, 2))


def test_the_state_of_an_observation_after_pickup_carries_the_key() -> None:
    env, nav = _layout(DOOR_KEY, (1, 1, 0))
    graph = StateGraph(nav, ALL)
    path = graph.path((1, 1, 0), (5, 2))
    sim = GridNav.from_env(env, remove_goal=True)
    for a in path[: path.index(PICKUP) + 1]:
        sim.step(a)
    state = graph.pose_of(sim.observation())
    assert state == sim.snapshot() and state[3] is not None
    assert graph.distance(state, (5, 2)) == len(path) - path.index(PICKUP) - 1


@pytest.mark.parametrize("start", [(1, 1, 0), (5, 4, 2), (3, 1, 1)])
def test_lava_paths_go_around_and_reach_the_goal_in_exactly_their_length(start: tuple[int, int, int]) -> None:
    rows = [r.replace("G", ".") for r in LAVA[:3]] + ["#.~.~.#", "#.~.~.#", "#..G..#", "#######"]
    env, nav = _layout(rows, start)
    graph = PoseGraph.from_nav(nav)
    assert not any(nav.encoding[x, y, 0] == 9 for x, y in graph.cells)  # no lava cell is a cell of the graph
    path = graph.path(start, (3, 5))
    steps, reached, on_lava = _follow(env, path)
    assert reached and not on_lava and steps == len(path) == graph.distance(start, (3, 5))


def test_a_goal_ringed_by_lava_is_unreachable_and_lava_is_no_goal() -> None:
    _, nav = _layout(LAVA, (1, 1, 0))
    graph = PoseGraph.from_nav(nav)
    with pytest.raises(InvalidGoalError, match="not reachable"):
        graph.distance((1, 1, 0), (3, 3))
    with pytest.raises(InvalidGoalError, match="is a lava"):
        graph.distance((1, 1, 0), (2, 2))
