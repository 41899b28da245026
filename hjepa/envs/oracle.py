"""The evaluation oracle of MiniGrid navigation: shortest paths over ``(x, y, dir)`` poses.

The benchmark (docs/benchmark.md) measures agents against the physical limit: the fewest left / right / forward
actions from a start pose to a goal cell, turns counted. :class:`PoseGraph` holds that graph
(a networkx ``DiGraph`` built by simulating :class:`GridNav` itself, so its edges are the
simulator's rules by construction) and answers distances with one backward BFS per goal;
:func:`make_tasks` draws tasks stratified by that distance. For evaluation and the ``oracle``
agent only: a planning agent never sees this module.

Poses are ``(x, y, dir)``, ``dir`` 0=east (+x), 1=south (+y), 2=west, 3=north; cells ``(x, y)`` index ``obs[x][y]``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Collection, Sequence, TypeVar

import networkx as nx
import numpy as np
from minigrid.core.constants import IDX_TO_OBJECT, OBJECT_TO_IDX, STATE_TO_IDX

from hjepa.envs.layout_cache import LayoutCache
from hjepa.envs.minigrid_nav import ACTIONS, GridNav
from hjepa.envs.state_oracle import backward_bfs, descend
from hjepa.envs.tasks import Bins, Cell, Pose, Task, as_bins, bin_of
from hjepa.errors import ConfigError, InvalidGoalError

_V = TypeVar("_V")

#: Actions that move or turn the agent: the pose graph's default.
POSE_ACTIONS: tuple[int, ...] = (ACTIONS["left"], ACTIONS["right"], ACTIONS["forward"])
_TOGGLE, _FORWARD, _PICKUP = ACTIONS["toggle"], ACTIONS["forward"], ACTIONS["pickup"]
_DOOR, _BOX, _AGENT = (OBJECT_TO_IDX[k] for k in ("door", "box", "agent"))
_OPEN, _LOCKED = STATE_TO_IDX["open"], STATE_TO_IDX["locked"]
_AHEAD = ((1, 0), (0, 1), (-1, 0), (0, -1))  # the cell in front, by direction
OPENED = 1
"""Fourth element of a pose ``(x, y, dir, OPENED)``: facing a door the agent has just opened."""


# ----------------------------------------------------------------------------- cell checks
def agent_pose(obs: np.ndarray) -> Pose:
    """``(x, y, dir)`` of the agent in a symbolic MiniGrid observation ``(W, H, 3)``."""
    cells = np.argwhere(obs[..., 0] == _AGENT)
    if len(cells) != 1:
        raise InvalidGoalError(f"Expected one agent in a symbolic (W, H, 3) observation, found {len(cells)}.")
    x, y = (int(v) for v in cells[0])
    return x, y, int(obs[x, y, 2])


def _require_free_cell(xy: Sequence[int], free: Collection[Cell], encoding: np.ndarray, role: str) -> Cell:
    """``xy`` as a cell of ``free``, or an :class:`InvalidGoalError` that says why not."""
    if len(xy) != 2:
        raise InvalidGoalError(f"The {role} cell must be (x, y), got {tuple(xy)}.")
    (x, y), (width, height) = (int(xy[0]), int(xy[1])), encoding.shape[:2]
    size = f"{width}x{height} grid"
    if not (0 <= x < width and 0 <= y < height):
        raise InvalidGoalError(f"The {role} cell ({x}, {y}) is outside the {size} (x < {width}, y < {height}).")
    if (x, y) in free:
        return x, y
    obj = IDX_TO_OBJECT.get(int(encoding[x, y, 0]), "unknown object")
    reason = "is not reachable from the layout's start" if obj in ("empty", "floor", "goal") else f"is a {obj}"
    raise InvalidGoalError(f"The {role} cell ({x}, {y}) {reason} in the {size} ({len(free)} free cells).")


def _require_direction(d: int, role: str) -> int:
    if not 0 <= int(d) < 4:
        raise InvalidGoalError(f"The {role} direction must be 0 (east), 1 (south), 2 (west) or 3 (north), got {d}.")
    return int(d)


def _check_actions(env_actions: Sequence[int]) -> tuple[int, ...]:
    actions = tuple(sorted({int(a) for a in env_actions}))
    if not actions or not set(actions) <= set(POSE_ACTIONS) | {_TOGGLE, _PICKUP}:
        raise ConfigError(f"The oracle models left=0, right=1, forward=2, pickup=3 and toggle=5, got {list(env_actions)}.")
    return actions


def _door_cells(nav: GridNav, free: set[Cell]) -> set[Cell]:
    """Unlocked door cells next to a free cell (the agent passes them standing on them)."""
    return {(int(x), int(y)) for x, y in nav.doors() if free & {(x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)}}


def _opened(nav: GridNav) -> GridNav:
    """A copy of ``nav``'s layout with every unlocked door open."""
    enc = nav.encoding.copy()
    enc[..., 2] = np.where((enc[..., 0] == _DOOR) & (enc[..., 2] != _LOCKED), _OPEN, enc[..., 2])
    return GridNav(enc, nav.start_pose)


def _lru_put(cache: OrderedDict, key: object, value: _V, capacity: int) -> _V:
    """Insert ``value`` as the newest entry of ``cache``, dropping the oldest beyond ``capacity``."""
    cache[key] = value
    if len(cache) > capacity:
        cache.popitem(last=False)
    return value


# ----------------------------------------------------------------------------- pose graph
def _pose_edges(sim: GridNav, pose: Pose, actions: tuple[int, ...], standable: set[Cell],
                closed: set[Cell]) -> list[tuple]:  # fmt: skip
    """The edges out of ``pose`` (and out of its opened twin when it faces a closed door),
    simulated on ``sim``, the layout with every door open."""
    edges, moves = [], {}
    for a in actions:
        if a != _TOGGLE:
            sim.set_pose(*pose)
            sim.step(a)
            moves[a] = sim.pose
    ahead = moves.get(_FORWARD, pose)[:2]
    facing_closed = ahead != pose[:2] and ahead in closed
    for a, nxt in moves.items():
        if nxt == pose or nxt[:2] not in standable or (a == _FORWARD and facing_closed):
            continue
        edges.append((pose, nxt, {"action": a}))
    if facing_closed and _TOGGLE in actions:
        twin = (*pose, OPENED)
        edges.append((pose, twin, {"action": _TOGGLE}))
        edges.append((twin, pose, {"action": _TOGGLE}))
        edges += [(twin, nxt, {"action": a}) for a, nxt in moves.items() if nxt != pose]
    return edges


class PoseGraph:
    """Shortest paths over the poses of one layout, for evaluation.

    Nodes are the 4 poses of every free cell (:meth:`GridNav.free_cells`) and of every door
    cell the agent can stand on (see :meth:`from_nav` for closed doors); there is an edge
    ``u -> v`` with attribute ``action`` (a MiniGrid action id) for every action that takes
    pose ``u`` to a different pose ``v``. Reaching the goal means standing on its cell in any
    direction, so :meth:`distances_to` runs one backward BFS from a virtual node joined to the
    goal cell's 4 poses (a multi-source BFS from those poses at distance 0).

    Attributes:
        graph: the frozen networkx ``DiGraph`` (node ``(x, y, dir)``, edge attribute ``action``).
        width: W, cells along x.
        height: H, cells along y.
        cells: the free cells ``(x, y)``, sorted.
    """

    def __init__(self, graph: nx.DiGraph, encoding: np.ndarray, free: Collection[Cell] | None = None,
                 cache_size: int = 1024) -> None:  # fmt: skip
        """Wrap a pose graph (as :meth:`from_nav` builds it), its layout ``(W, H, 3)`` and the
        cells tasks are drawn on (default: every node's cell)."""
        self.graph = nx.freeze(graph)
        self._encoding = np.array(encoding, dtype=np.uint8, copy=True)
        self.width, self.height = int(encoding.shape[0]), int(encoding.shape[1])
        self._poses: list[Pose] = sorted(graph.nodes)
        self._index = {p: i for i, p in enumerate(self._poses)}
        self._cell_set = frozenset(p[:2] for p in self._poses)  # where the agent may stand
        self.cells: tuple[Cell, ...] = tuple(sorted(self._cell_set if free is None else set(free) & self._cell_set))
        # Flat int adjacency: a BFS over it is several times faster than over networkx's views.
        self._pred: list[list[int]] = [[] for _ in self._poses]
        self._succ: list[list[tuple[int, int]]] = [[] for _ in self._poses]
        for u, v, a in sorted(graph.edges(data="action"), key=lambda e: e[2]):  # path(): ties to the smallest action
            self._pred[self._index[v]].append(self._index[u])
            self._succ[self._index[u]].append((a, self._index[v]))
        self._cache: OrderedDict[Cell, np.ndarray] = OrderedDict()
        self._cache_size = int(cache_size)

    @classmethod
    def from_nav(cls, nav: GridNav, env_actions: Sequence[int] = POSE_ACTIONS) -> "PoseGraph":
        """Build the graph by applying each action to each pose with ``GridNav.step``.

        Doors count as they are in ``nav`` now: open ones are passable. Closed (unlocked) ones
        are walls, unless ``env_actions`` holds toggle: then facing a closed door, toggle leads
        to the pose ``(x, y, dir, OPENED)``, whose forward enters the door. A shortest path
        never closes a door nor passes one twice, so charging one toggle per closed door on
        the way is exact for shortest paths (an opened door is forgotten once the agent turns
        away, which only lengthens paths that come back to it).

        Args:
            nav: the layout's simulator (left unchanged).
            env_actions: the MiniGrid action ids the agent may use, a subset of (0, 1, 2, 5).

        Raises:
            ConfigError: an action other than left, right, forward, toggle; or toggle in a
                layout with boxes (toggling one changes the layout in ways the graph does not model).
        """
        actions = tuple(a for a in _check_actions(env_actions) if a != _PICKUP)  # no keys here: StateGraph's case
        toggles = _TOGGLE in actions
        if toggles and (nav.encoding[..., 0] == _BOX).any():
            raise ConfigError("PoseGraph with toggle models doors, not boxes; this layout has boxes.")
        free = {(int(x), int(y)) for x, y in nav.free_cells()}
        doors = _door_cells(nav, free)
        closed = {c for c in doors if nav.encoding[c][2] != _OPEN}
        standable = free | (doors if toggles else doors - closed)
        sim, edges = _opened(nav), []
        for x, y in sorted(standable):
            for d in range(4):
                edges += _pose_edges(sim, (x, y, d), actions, standable, closed)
        graph = nx.DiGraph()
        graph.add_nodes_from((x, y, d) for x, y in sorted(standable) for d in range(4))
        graph.add_edges_from(edges)
        return cls(graph, nav.encoding, free)

    def __len__(self) -> int:  # the number of poses: 4 per cell, and the opened twins
        return len(self._poses)

    def has_pose(self, pose: Sequence[int]) -> bool:
        """Whether ``pose`` (``(x, y, dir)`` or ``(x, y, dir, OPENED)``) is a node."""
        return tuple(int(v) for v in pose) in self._index

    def pose_of(self, obs: np.ndarray) -> tuple[int, ...]:
        """The node of the agent in a symbolic observation ``(W, H, 3)``: its ``(x, y, dir)``,
        or ``(x, y, dir, OPENED)`` when it faces an open door that started closed (it opened it).

        Raises:
            InvalidGoalError: the observation does not hold exactly one agent.
        """
        x, y, d = pose = agent_pose(obs)
        ahead = obs[x + _AHEAD[d][0], y + _AHEAD[d][1]]
        opened = (*pose, OPENED)
        return opened if ahead[0] == _DOOR and ahead[2] == _OPEN and self.has_pose(opened) else pose

    def has_cell(self, xy: Sequence[int]) -> bool:
        """Whether ``(x, y)`` is a cell the agent can stand on in this graph (reachable)."""
        return len(xy) == 2 and (int(xy[0]), int(xy[1])) in self._cell_set

    def distances_to(self, goal_xy: Sequence[int]) -> dict[Pose, int]:
        """The number of actions from every pose to the goal cell (poses that cannot reach it
        are left out). A fresh dict: the caller may change it.

        Raises:
            InvalidGoalError: the goal cell is outside the grid, a wall, or not reachable.
        """
        dist = self._distance_array(goal_xy).tolist()
        return {p: d for p, d in zip(self._poses, dist) if d >= 0}

    def distance(self, start_pose: Sequence[int], goal_xy: Sequence[int]) -> int:
        """The fewest actions from ``start_pose`` to standing on ``goal_xy`` (0 if already there).

        Raises:
            InvalidGoalError: the goal or the start is not a free cell, or the goal cannot be
                reached from the start with this graph's actions.
        """
        start = self._start_index(start_pose)
        d = int(self._distance_array(goal_xy)[start])
        if d < 0:
            raise InvalidGoalError(f"The goal cell {tuple(goal_xy)} cannot be reached from start {tuple(start_pose)}.")
        return d

    def path(self, start_pose: Sequence[int], goal_xy: Sequence[int]) -> list[int]:
        """MiniGrid action ids of one shortest path (ties go to the smallest action id).

        Raises:
            InvalidGoalError: as :meth:`distance`.
        """
        remaining = self.distance(start_pose, goal_xy)
        return descend(self._succ, self._distance_array(goal_xy), self._start_index(start_pose), remaining)

    def _start_index(self, start_pose: Sequence[int]) -> int:
        if len(start_pose) not in (3, 4):
            raise InvalidGoalError(f"The start pose must be (x, y, dir), got {tuple(start_pose)}.")
        x, y = _require_free_cell(start_pose[:2], self._cell_set, self._encoding, "start")
        pose = (x, y, _require_direction(start_pose[2], "start"), *(int(v) for v in start_pose[3:]))
        if pose not in self._index:
            raise InvalidGoalError(f"The start pose {pose} is not a node (an opened twin faces a closed door).")
        return self._index[pose]

    def _distance_array(self, goal_xy: Sequence[int]) -> np.ndarray:
        """``(len(self),)`` integer distances to the goal cell, -1 where unreachable; cached."""
        goal = _require_free_cell(goal_xy, self._cell_set, self._encoding, "goal")
        dist = self._cache.pop(goal, None)
        if dist is None:
            dist = self._bfs([self._index[(*goal, d)] for d in range(4)])
        return _lru_put(self._cache, goal, dist, self._cache_size)

    def _bfs(self, sources: list[int]) -> np.ndarray:
        dist = backward_bfs(self._pred, sources)
        return dist.astype(np.int16 if len(dist) < 2**15 else np.int32)  # memory: many goals cached


# ----------------------------------------------------------------------------- per-layout cache
class LayoutOracle:
    """One env's layout simulators and pose graphs, LRU-cached; ``graph`` never resets a ``nav``."""

    def __init__(self, env_id: str, capacity: int = 64, env_actions: Sequence[int] = POSE_ACTIONS,
                 **env_kwargs: object) -> None:  # fmt: skip
        """Args: a MiniGrid env id, how many layouts to keep, the MiniGrid actions the agent may
        use (:meth:`PoseGraph.from_nav`), arguments for :func:`make_minigrid`."""
        self.env_id = env_id
        self.env_actions = _check_actions(env_actions)
        self.layouts = LayoutCache(env_id, capacity=capacity, **env_kwargs)
        self._builder = LayoutCache(env_id, capacity=1, **env_kwargs)
        self._graphs: OrderedDict[int, PoseGraph] = OrderedDict()
        self._capacity = int(capacity)

    def nav(self, layout_seed: int) -> GridNav:
        """The reset simulator of layout ``layout_seed`` (shared: it is reset on every call)."""
        return self.layouts.get(layout_seed)

    def graph(self, layout_seed: int) -> "PoseGraph | StateGraph":
        """The oracle graph of layout ``layout_seed``: a :class:`PoseGraph`, or a
        :class:`~hjepa.envs.state_oracle.StateGraph` where the layout holds keys or locked doors."""
        from hjepa.envs.state_oracle import StateGraph, needs_state_graph

        seed = int(layout_seed)
        graph = self._graphs.pop(seed, None)
        if graph is None:
            nav = self._builder.get(seed)
            graph = (StateGraph(nav, self.env_actions) if needs_state_graph(nav.encoding)
                     else PoseGraph.from_nav(nav, self.env_actions))  # fmt: skip
        return _lru_put(self._graphs, seed, graph, self._capacity)


def make_tasks(
    env_id: str, layout_seeds: Sequence[int], per_bin: int, bins: Bins, seed: int,
    max_draws: int | None = None, oracle: LayoutOracle | None = None, env_actions: Sequence[int] = POSE_ACTIONS,
) -> list[Task]:  # fmt: skip
    """Draw ``per_bin`` evaluation tasks for every distance bin, deterministically.

    Each draw picks a layout seed from ``layout_seeds``, a start pose (free cell, random
    direction) and a goal cell (another free cell), all uniformly; it is kept when its oracle
    distance falls in a bin that still needs tasks (duplicates are skipped).

    Args:
        env_id: a MiniGrid navigation env, e.g. ``"MiniGrid-FourRooms-v0"``.
        layout_seeds: the layouts to draw from.
        per_bin: tasks per bin.
        bins: e.g. :data:`FOURROOMS_BINS`.
        seed: seeds the draws.
        max_draws: give up after this many draws (default ``max(5000, 200 * per_bin * len(bins))``).
        oracle: a :class:`LayoutOracle` of ``env_id`` to reuse its graphs.
        env_actions: the MiniGrid actions the agent may use (with toggle, closed doors cost
            one; ignored when ``oracle`` is given).

    Returns:
        Tasks grouped by bin in the order of ``bins``, each group in draw order.

    Raises:
        ConfigError: no layout seeds, ``per_bin < 1``, or a bin still short after ``max_draws``.
    """
    bins, seeds = as_bins(bins), [int(s) for s in layout_seeds]
    if not seeds or per_bin < 1:
        raise ConfigError(f"make_tasks needs layout seeds and per_bin >= 1, got {seeds} and {per_bin}.")
    if oracle is not None and oracle.env_id != env_id:
        raise ConfigError(f"make_tasks for {env_id} was given the oracle of {oracle.env_id}.")
    limit = max_draws if max_draws is not None else max(5000, 200 * per_bin * len(bins))
    rng, oracle = np.random.default_rng(seed), oracle or LayoutOracle(env_id, env_actions=env_actions)
    found, longest = _fill_bins(rng, seeds, oracle, bins, per_bin, limit)
    short = ", ".join(f"'{n}' ({bins.describe(n)}): {len(t)}/{per_bin}" for n, t in found.items() if len(t) < per_bin)
    if short:
        raise ConfigError(
            f"make_tasks could not fill distance bin(s) {short} for {env_id} on layout seeds "
            f"{seeds[:8]}{' ...' if len(seeds) > 8 else ''} after {limit} draws; the longest oracle distance "
            f"seen was {longest}. Use more layout seeds, fewer tasks per bin, or bins this env reaches."
        )
    return [task for name in bins for task in found[name]]


def _fill_bins(
    rng: np.random.Generator, seeds: list[int], oracle: LayoutOracle, bins: DistanceBins, per_bin: int, limit: int
) -> tuple[dict[str, list[Task]], int]:
    """Draw until every bin holds ``per_bin`` tasks or ``limit`` draws; also the longest distance."""
    found: dict[str, list[Task]] = {name: [] for name in bins}
    seen, longest = set(), 0  # (layout, start, goal) of kept tasks; the longest distance drawn
    for _ in range(limit):
        layout, start, goal, distance = _draw(rng, seeds, oracle)
        longest = max(longest, distance)
        name = bin_of(distance, bins)
        if name is None or len(found[name]) >= per_bin or (layout, start, goal) in seen:
            continue
        seen.add((layout, start, goal))
        found[name].append(Task(layout, start, goal, distance, name))
        if all(len(tasks) >= per_bin for tasks in found.values()):
            break
    return found, longest


def _draw(rng: np.random.Generator, seeds: list[int], oracle: LayoutOracle) -> tuple[int, Pose, Cell, int]:
    """One uniform ``(layout seed, start pose, goal cell != start cell, oracle distance)``."""
    layout = seeds[int(rng.integers(len(seeds)))]
    graph = oracle.graph(layout)
    i, j = (int(k) for k in rng.choice(len(graph.cells), size=2, replace=False))
    start, goal = (*graph.cells[i], int(rng.integers(4))), graph.cells[j]
    return layout, start, goal, graph.distance(start, goal)


def goal_observation(nav: GridNav, goal_xy: Sequence[int], direction: int = 0) -> np.ndarray:
    """The observation ``(W, H, 3)`` uint8 the agent would see standing on ``goal_xy``.

    The agent is placed facing ``direction``; ``nav``'s pose is restored afterwards.

    Raises:
        InvalidGoalError: the cell is not one of ``nav.free_cells()``, or a bad direction.
    """
    free = {(int(x), int(y)) for x, y in nav.free_cells()}
    (x, y), d = _require_free_cell(goal_xy, free, nav.encoding, "goal"), _require_direction(direction, "goal")
    saved = nav.pose
    try:
        nav.set_pose(x, y, d)
        return nav.observation()
    finally:
        nav.set_pose(*saved)
