"""Tests of hjepa.envs.oracle: pose-graph distances, paths, task drawing, goal observations."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from minigrid.core.constants import OBJECT_TO_IDX

from hjepa.envs import ACTIONS, GridNav, layout_nav
from hjepa.envs.oracle import LayoutOracle, PoseGraph, goal_observation, make_tasks
from hjepa.envs.tasks import FOURROOMS_BINS, MAZEROOMS_BINS, DistanceBins, Task, bin_of
from hjepa.errors import ConfigError, InvalidGoalError

WALL, EMPTY, AGENT = OBJECT_TO_IDX["wall"], OBJECT_TO_IDX["empty"], OBJECT_TO_IDX["agent"]
LEFT, RIGHT, FORWARD = ACTIONS["left"], ACTIONS["right"], ACTIONS["forward"]
FOURROOMS = "MiniGrid-FourRooms-v0"


_CELLS = {"#": (WALL, 5, 0), ".": (EMPTY, 0, 0), "D": (OBJECT_TO_IDX["door"], 0, 1),
          "O": (OBJECT_TO_IDX["door"], 0, 0), "B": (OBJECT_TO_IDX["box"], 1, 0)}  # fmt: skip


def _grid(rows: list[str], start: tuple[int, int, int] = (1, 1, 0)) -> GridNav:
    """A GridNav from a picture: ``#`` wall, ``.`` empty, ``D`` closed door, ``O`` open door,
    ``B`` box; ``rows[y][x]``."""
    enc = np.zeros((len(rows[0]), len(rows), 3), dtype=np.uint8)
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            enc[x, y] = _CELLS[ch]
    return GridNav(enc, start)


ROOM = ["#####", "#...#", "#...#", "#...#", "#####"]
# A U-shaped corridor: along y=1 to x=5, down to y=3, back along y=3.
U_TURN = ["#######", "#.....#", "#####.#", "#.....#", "#######"]


@pytest.fixture(scope="module")
def fourrooms() -> tuple[GridNav, PoseGraph]:
    nav = layout_nav(FOURROOMS, 0)
    return nav, PoseGraph.from_nav(nav)


def _walk(nav: GridNav, start: tuple[int, int, int], actions: list[int]) -> tuple[int, int, int]:
    nav.set_pose(*start)
    for a in actions:
        nav.step(a)
    return nav.pose


# ------------------------------------------------------------------------ distances
@pytest.mark.parametrize(
    ("rows", "start", "goal", "expected"),
    [
        (ROOM, (1, 1, 0), (3, 1), 2),  # two forwards
        (ROOM, (1, 1, 0), (1, 3), 3),  # right, two forwards
        (ROOM, (1, 1, 2), (3, 1), 4),  # turn around (2), two forwards
        (ROOM, (2, 2, 1), (2, 2), 0),  # already there, any direction
        (ROOM, (1, 1, 0), (3, 3), 5),  # 2 forwards, right, 2 forwards
        (U_TURN, (1, 1, 0), (1, 3), 4 + 1 + 2 + 1 + 4),
        (U_TURN, (1, 1, 2), (1, 3), 2 + 12),
    ],
)
def test_distances_on_hand_made_grids(rows: list[str], start: tuple, goal: tuple, expected: int) -> None:
    nav = _grid(rows)
    graph = PoseGraph.from_nav(nav)
    assert graph.distance(start, goal) == expected
    actions = graph.path(start, goal)
    assert len(actions) == expected and _walk(nav, start, actions)[:2] == goal


def test_graph_structure_and_restored_pose() -> None:
    nav = _grid(ROOM, start=(2, 2, 3))
    graph = PoseGraph.from_nav(nav)
    assert nav.pose == (2, 2, 3), "building the graph must not move the agent"
    assert len(graph) == 9 * 4 and len(graph.cells) == 9
    assert graph.graph[(1, 1, 0)][(2, 1, 0)]["action"] == FORWARD
    assert graph.graph[(1, 1, 0)][(1, 1, 3)]["action"] == LEFT
    assert not graph.graph.has_edge((1, 1, 2), (0, 1, 2)), "no edge into the wall"
    assert graph.graph.out_degree((1, 1, 2)) == 2, "forward into a wall does not change the pose"
    assert graph.has_cell((3, 3)) and not graph.has_cell((0, 0)) and not graph.has_cell((9, 9))
    with pytest.raises(nx.NetworkXError):
        graph.graph.add_edge((1, 1, 0), (3, 3, 0))  # frozen


def test_edges_follow_gridnav_step(fourrooms: tuple[GridNav, PoseGraph]) -> None:
    nav, graph = fourrooms
    for pose in graph.graph.nodes:
        for a in (LEFT, RIGHT, FORWARD):
            nav.set_pose(*pose)
            nav.step(a)
            moved = nav.pose != pose
            assert moved == any(d["action"] == a for d in graph.graph[pose].values())
            if moved:
                assert graph.graph[pose][nav.pose]["action"] == a


def test_distances_match_networkx_with_a_virtual_goal(fourrooms: tuple[GridNav, PoseGraph]) -> None:
    _, graph = fourrooms
    for goal in graph.cells[::37]:
        g = nx.DiGraph(graph.graph)
        g.add_edges_from(((*goal, d), "goal") for d in range(4))
        expected = {p: d - 1 for p, d in nx.shortest_path_length(g, target="goal").items() if p != "goal"}
        assert graph.distances_to(goal) == expected


def test_paths_reach_the_goal_on_fourrooms(fourrooms: tuple[GridNav, PoseGraph]) -> None:
    nav, graph = fourrooms
    rng = np.random.default_rng(0)
    for _ in range(20):
        i, j = rng.choice(len(graph.cells), size=2, replace=False)
        start, goal = (*graph.cells[i], int(rng.integers(4))), graph.cells[j]
        actions = graph.path(start, goal)
        assert len(actions) == graph.distance(start, goal) > 0
        assert graph.path(start, goal) == actions, "paths are deterministic"
        nav.set_pose(*start)
        for a in actions:
            assert nav.pose[:2] != goal, "a shortest path does not pass over the goal early"
            nav.step(a)
        assert nav.pose[:2] == goal


def test_distances_to_returns_a_fresh_dict(fourrooms: tuple[GridNav, PoseGraph]) -> None:
    _, graph = fourrooms
    goal = graph.cells[0]
    first = graph.distances_to(goal)
    first.clear()
    assert len(graph.distances_to(goal)) == len(graph)


def test_a_rebuilt_graph_gives_the_same_distances(fourrooms: tuple[GridNav, PoseGraph]) -> None:
    """(Its speed, once a timed assertion here, is a benchmark figure, not a unit test.)"""
    nav, graph = fourrooms
    rebuilt = PoseGraph.from_nav(nav)
    for goal in graph.cells[100:110]:
        assert rebuilt.distances_to(goal) == graph.distances_to(goal)


# ------------------------------------------------------------------------ errors
def test_invalid_goals_and_starts() -> None:
    graph = PoseGraph.from_nav(_grid(ROOM))
    with pytest.raises(InvalidGoalError, match=r"goal cell \(0, 2\) is a wall.*5x5"):
        graph.distance((1, 1, 0), (0, 2))
    with pytest.raises(InvalidGoalError, match=r"goal cell \(7, 1\) is outside the 5x5"):
        graph.distances_to((7, 1))
    with pytest.raises(InvalidGoalError, match=r"start cell \(4, 4\) is a wall"):
        graph.path((4, 4, 0), (1, 1))
    with pytest.raises(InvalidGoalError, match="start direction"):
        graph.distance((1, 1, 4), (2, 2))


def test_unreachable_goal() -> None:
    nav = _grid(["#######", "#..#..#", "#######"])  # two rooms, no door
    graph = PoseGraph.from_nav(nav)
    assert graph.has_cell((2, 1)) and not graph.has_cell((4, 1))
    with pytest.raises(InvalidGoalError, match=r"\(4, 1\) is not reachable"):
        graph.distance((1, 1, 0), (4, 1))


TOGGLE = ACTIONS["toggle"]
DOORWAY = ["#######", "#..D..#", "#######"]  # two rooms joined by a closed door at (3, 1)


def test_a_closed_door_is_a_wall_without_toggle_and_costs_one_toggle_with_it() -> None:
    nav = _grid(DOORWAY)
    with pytest.raises(InvalidGoalError, match="cannot be reached"):
        PoseGraph.from_nav(nav).distance((1, 1, 0), (4, 1))
    graph = PoseGraph.from_nav(nav, env_actions=(LEFT, RIGHT, FORWARD, TOGGLE))
    assert graph.distance((1, 1, 0), (4, 1)) == 4  # forward, toggle, forward onto the door, forward
    assert graph.path((1, 1, 0), (4, 1)) == [FORWARD, TOGGLE, FORWARD, FORWARD]
    assert graph.distance((2, 1, 2), (5, 1)) == 2 + 1 + 3  # turn around, toggle, three forwards
    assert graph.path((2, 1, 0, 1), (4, 1)) == [FORWARD, FORWARD]  # facing the door just opened
    assert not graph.has_pose((1, 1, 0, 1)) and graph.has_cell((3, 1)) and (3, 1) not in graph.cells
    path = graph.path((1, 1, 0), (5, 1))
    assert _walk(nav, (1, 1, 0), path)[:2] == (5, 1) and len(path) == graph.distance((1, 1, 0), (5, 1))
    nav.reset()


def test_the_pose_of_an_observation_is_the_opened_twin_only_facing_a_door_that_started_closed() -> None:
    nav = _grid(DOORWAY)
    graph = PoseGraph.from_nav(nav, env_actions=(LEFT, RIGHT, FORWARD, TOGGLE))
    nav.set_pose(2, 1, 0)
    assert graph.pose_of(nav.observation()) == (2, 1, 0)  # facing the closed door
    nav.step(TOGGLE)
    assert graph.pose_of(nav.observation()) == (2, 1, 0, 1)  # facing it opened
    nav.step(LEFT)
    assert graph.pose_of(nav.observation()) == (2, 1, 3)
    nav.reset()
    open_from_start = _grid(["#######", "#..O..#", "#######"])
    open_graph = PoseGraph.from_nav(open_from_start, env_actions=(LEFT, RIGHT, FORWARD, TOGGLE))
    open_from_start.set_pose(2, 1, 0)
    assert open_graph.pose_of(open_from_start.observation()) == (2, 1, 0)  # no twin: it was never closed
    with pytest.raises(InvalidGoalError, match="one agent"):
        graph.pose_of(nav.encoding.copy())


def test_an_open_door_is_passable_and_boxes_are_refused_with_toggle() -> None:
    assert PoseGraph.from_nav(_grid(["#######", "#..O..#", "#######"])).distance((1, 1, 0), (4, 1)) == 3
    with pytest.raises(ConfigError, match="boxes"):
        PoseGraph.from_nav(_grid(["#####", "#.B.#", "#####"]), env_actions=(LEFT, RIGHT, FORWARD, TOGGLE))
    with pytest.raises(ConfigError, match="toggle=5"):  # drop=4 is not modelled
        PoseGraph.from_nav(_grid(ROOM), env_actions=(0, 1, 2, 4))


def test_multiroom_oracle_paths_reach_the_goal_and_the_goal_observation_keeps_the_start_doors() -> None:
    env, actions = "MiniGrid-MultiRoom-N6-v0", (LEFT, RIGHT, FORWARD, TOGGLE)
    oracle = LayoutOracle(env, env_actions=actions)
    tasks = make_tasks(env, [0, 1], 2, {"near": (1, 15), "far": (30, math.inf)}, seed=0, oracle=oracle)
    door = OBJECT_TO_IDX["door"]
    for task in tasks:
        nav, path = oracle.nav(task.layout_seed), oracle.graph(task.layout_seed).path(task.start, task.goal)
        closed = int(((nav.encoding[..., 0] == door) & (nav.encoding[..., 2] == 1)).sum())
        assert _walk(nav, task.start, path)[:2] == task.goal and len(path) == task.distance
        opened = [a for a in path if a == TOGGLE]
        nav.reset()
        goal = goal_observation(nav, task.goal)  # the goal cell, not the route: every door as at the start
        assert int(((goal[..., 0] == door) & (goal[..., 2] == 1)).sum()) == closed
        assert tuple(np.argwhere(goal[..., 0] == AGENT)[0]) == task.goal
    assert any(TOGGLE in oracle.graph(t.layout_seed).path(t.start, t.goal) for t in tasks if t.bin == "far")


# ------------------------------------------------------------------------ bins and tasks
def test_bins() -> None:
    assert list(FOURROOMS_BINS) == ["short", "medium", "long"]
    assert list(MAZEROOMS_BINS) == ["short", "medium", "long", "xlong"]
    assert FOURROOMS_BINS["long"] == (25, math.inf)
    assert [bin_of(d, FOURROOMS_BINS) for d in (0, 1, 12, 13, 24, 25, 400)] == [
        None, "short", "short", "medium", "medium", "long", "long"
    ]  # fmt: skip
    assert bin_of(50, {"a": (1, 10), "b": (60, 70)}) is None
    with pytest.raises(ConfigError, match="overlap"):
        DistanceBins.from_mapping({"a": (1, 10), "b": (10, 20)})
    with pytest.raises(ConfigError):
        DistanceBins.from_mapping({})


def test_make_tasks_is_stratified_and_deterministic() -> None:
    oracle = LayoutOracle(FOURROOMS)
    tasks = make_tasks(FOURROOMS, [0, 1], per_bin=4, bins=FOURROOMS_BINS, seed=3, oracle=oracle)
    assert [t.bin for t in tasks] == ["short"] * 4 + ["medium"] * 4 + ["long"] * 4
    assert len(set(tasks)) == 12
    for t in tasks:
        assert isinstance(t, Task) and bin_of(t.distance, FOURROOMS_BINS) == t.bin
        assert t.start[:2] != t.goal and t.layout_seed in (0, 1)
        assert oracle.graph(t.layout_seed).distance(t.start, t.goal) == t.distance
    assert make_tasks(FOURROOMS, [0, 1], 4, FOURROOMS_BINS, seed=3) == tasks
    assert make_tasks(FOURROOMS, [0, 1], 4, FOURROOMS_BINS, seed=4) != tasks


def test_layout_oracle_graph_leaves_a_nav_in_use_alone() -> None:
    oracle = LayoutOracle(FOURROOMS)
    nav = oracle.nav(5)
    graph = oracle.graph(5)
    far = graph.cells[-1] if graph.cells[-1] != nav.start_pose[:2] else graph.cells[0]
    nav.set_pose(*far, 2)
    oracle.graph(7)  # building a graph mid-episode must not reset the nav in use
    assert nav.pose == (*far, 2) and oracle.graph(5) is graph


def test_make_tasks_reports_an_unfillable_bin() -> None:
    bins = {"short": (1, 12), "huge": (500, math.inf)}
    with pytest.raises(ConfigError, match=r"'huge' \(500-inf\): 0/2.*longest oracle distance seen was \d+"):
        make_tasks(FOURROOMS, [0], per_bin=2, bins=bins, seed=0, max_draws=300)
    with pytest.raises(ConfigError):
        make_tasks(FOURROOMS, [], per_bin=2, bins=FOURROOMS_BINS, seed=0)


# ------------------------------------------------------------------------ goal observation
def test_goal_observation(fourrooms: tuple[GridNav, PoseGraph]) -> None:
    nav, graph = fourrooms
    nav.set_pose(*nav.start_pose)
    goal = graph.cells[-1] if graph.cells[-1] != nav.start_pose[:2] else graph.cells[0]
    obs = goal_observation(nav, goal, direction=3)
    assert nav.pose == nav.start_pose, "the pose is restored"
    assert tuple(obs[goal]) == (AGENT, 0, 3)
    assert (obs[..., 0] == AGENT).sum() == 1
    expected = nav.encoding.copy()
    expected[goal] = (AGENT, 0, 3)
    assert np.array_equal(obs, expected)
    with pytest.raises(InvalidGoalError, match=r"\(0, 0\) is a wall.*19x19"):
        goal_observation(nav, (0, 0))
