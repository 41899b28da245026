"""The evaluation oracle of MiniGrid layouts with keys and locked doors: shortest paths over
whole states (pose, what is carried, every changed cell), lava never entered.

:class:`~hjepa.envs.oracle.PoseGraph` plans over poses and charges one toggle per closed door,
which is exact while doors are the only thing that changes. A key changes more: picking it up
empties its cell and lets a toggle open the locked door of its colour, so the shortest path to
the goal may first walk away from it. :class:`StateGraph` therefore searches the states
themselves, a :data:`~hjepa.envs.minigrid_nav.NavState` each, by simulating every action with
:class:`~hjepa.envs.minigrid_nav.GridNav` (its edges are the simulator's rules by
construction). A step into lava ends MiniGrid's episode as a failure, so it is no edge: no path
crosses lava. For evaluation and the ``oracle`` agent only: a planning agent never sees it.
"""

from __future__ import annotations

import copy
from collections import OrderedDict, deque
from typing import Sequence

import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX, STATE_TO_IDX

from hjepa.envs.minigrid_nav import ACTIONS, GridNav, NavState
from hjepa.envs.tasks import Cell, Pose
from hjepa.errors import ConfigError, InvalidGoalError

_EMPTY, _DOOR, _KEY, _BALL, _BOX = (OBJECT_TO_IDX[k] for k in ("empty", "door", "key", "ball", "box"))
_OPEN, _LOCKED = STATE_TO_IDX["open"], STATE_TO_IDX["locked"]
_STAND = tuple(OBJECT_TO_IDX[k] for k in ("empty", "floor", "goal", "lava"))
STATE_ACTIONS = (ACTIONS["left"], ACTIONS["right"], ACTIONS["forward"], ACTIONS["pickup"], ACTIONS["toggle"])


def needs_state_graph(encoding: np.ndarray) -> bool:
    """Whether a layout ``(W, H, 3)`` holds keys or locked doors (:class:`StateGraph`'s case)."""
    obj, state = encoding[..., 0], encoding[..., 2]
    return bool((obj == _KEY).any() or ((obj == _DOOR) & (state == _LOCKED)).any())


class StateGraph:
    """Shortest paths over the states of one layout, reachable from any free cell at reset.

    Interface of :class:`~hjepa.envs.oracle.PoseGraph`: a start ``(x, y, dir)`` means that
    pose in the layout as at reset; :meth:`pose_of` reads a state from an observation; the
    goal is a cell, reached in any state whose agent stands on it.

    Attributes:
        width: W, cells along x.
        height: H, cells along y.
        cells: the free cells ``(x, y)`` tasks are drawn on, sorted.
    """

    def __init__(self, nav: GridNav, env_actions: Sequence[int], cache_size: int = 256) -> None:
        """Search every state reachable from ``nav``'s free cells with ``env_actions``."""
        actions = tuple(sorted({int(a) for a in env_actions}))
        if not set(actions) <= set(STATE_ACTIONS):
            raise ConfigError(f"StateGraph models left=0, right=1, forward=2, pickup=3, toggle=5, got {list(actions)}.")
        if (nav.encoding[..., 0] == _BOX).any():
            raise ConfigError("StateGraph models keys, balls and doors, not boxes; this layout has boxes.")
        self._enc0 = nav.encoding.copy()
        self.width, self.height = (int(v) for v in self._enc0.shape[:2])
        self.cells: tuple[Cell, ...] = tuple((int(x), int(y)) for x, y in nav.free_cells())
        sim = copy.deepcopy(nav)
        starts = [(x, y, d, None, ()) for x, y in self.cells for d in range(4)]
        self._states, self._succ = _search(sim, starts, actions)
        self._index = {s: i for i, s in enumerate(self._states)}
        self._pred: list[list[int]] = [[] for _ in self._states]
        for u, edges in enumerate(self._succ):
            for _, v in edges:
                self._pred[v].append(u)
        self._cell_set = frozenset(s[:2] for s in self._states)
        self._cache: OrderedDict[Cell, np.ndarray] = OrderedDict()
        self._cache_size = int(cache_size)

    def __len__(self) -> int:
        return len(self._states)

    def has_cell(self, xy: Sequence[int]) -> bool:
        """Whether the agent can stand on ``(x, y)`` in some reachable state."""
        return len(xy) == 2 and (int(xy[0]), int(xy[1])) in self._cell_set

    def has_pose(self, pose: Sequence[int]) -> bool:
        """Whether the pose ``(x, y, dir)`` in the layout at reset is a state of the graph."""
        return self._node(pose) in self._index

    def pose_of(self, obs: np.ndarray) -> NavState:
        """The state of a symbolic observation ``(W, H, 3)``: its pose, and the cells that
        differ from the layout at reset (a picked-up key is carried: no action of ours drops it)."""
        from hjepa.envs.oracle import agent_pose

        x, y, d = agent_pose(obs)
        enc = np.array(obs, dtype=np.uint8, copy=True)
        under = self._enc0[x, y].copy()
        if under[0] == _DOOR:
            under[2] = _OPEN  # the agent stands in an open door
        elif under[0] not in _STAND:
            under[:] = (_EMPTY, 0, 0)  # a key it picked up, then stepped onto its cell
        enc[x, y] = under
        differ = np.argwhere((enc != self._enc0).any(-1))
        changes = tuple((int(cx) * self.height + int(cy), *(int(v) for v in enc[cx, cy])) for cx, cy in differ)
        gone = [tuple(int(v) for v in self._enc0[cx, cy, :2]) for cx, cy in differ
                if self._enc0[cx, cy, 0] in (_KEY, _BALL) and enc[cx, cy, 0] == _EMPTY]  # fmt: skip
        return x, y, d, (gone[0] if gone else None), tuple(sorted(changes))

    def distances_to(self, goal_xy: Sequence[int]) -> dict[Pose, int]:
        """The number of actions to the goal cell from every pose, in the layout at reset."""
        dist = self._distance_array(goal_xy)
        out = {}
        for (x, y), d in ((c, d) for c in self.cells for d in range(4)):
            i = self._index.get((x, y, d, None, ()))
            if i is not None and dist[i] >= 0:
                out[(x, y, d)] = int(dist[i])
        return out

    def distance(self, start: Sequence, goal_xy: Sequence[int]) -> int:
        """The fewest actions from ``start`` (a pose at reset, or a state) to standing on ``goal_xy``.

        Raises:
            InvalidGoalError: the goal or the start is no state's cell, or the goal cannot be reached.
        """
        d = int(self._distance_array(goal_xy)[self._start_index(start)])
        if d < 0:
            raise InvalidGoalError(f"The goal cell {tuple(goal_xy)} cannot be reached from start {tuple(start)[:3]}.")
        return d

    def path(self, start: Sequence, goal_xy: Sequence[int]) -> list[int]:
        """MiniGrid action ids of one shortest path (ties go to the smallest action id)."""
        remaining = self.distance(start, goal_xy)
        return descend(self._succ, self._distance_array(goal_xy), self._start_index(start), remaining)

    def _node(self, start: Sequence) -> NavState:
        return tuple(start) if len(start) == 5 else (*(int(v) for v in start[:3]), None, ())

    def _start_index(self, start: Sequence) -> int:
        node = self._node(start)
        if node not in self._index:
            raise InvalidGoalError(f"The start {node[:3]} is not a reachable state of this layout "
                                   f"({len(self.cells)} free cells).")  # fmt: skip
        return self._index[node]

    def _distance_array(self, goal_xy: Sequence[int]) -> np.ndarray:
        """``(len(self),)`` actions to the goal cell, -1 where unreachable; cached."""
        from hjepa.envs.oracle import _lru_put, _require_free_cell

        goal = _require_free_cell(goal_xy, self._cell_set, self._enc0, "goal")
        dist = self._cache.pop(goal, None)
        if dist is None:
            dist = backward_bfs(self._pred, [i for i, s in enumerate(self._states) if s[:2] == goal])
        return _lru_put(self._cache, goal, dist, self._cache_size)


def _search(sim: GridNav, starts: list[NavState], actions: tuple[int, ...]) -> tuple[list, list]:
    """Breadth-first over the states reachable from ``starts``: the states, and per state its
    ``(action, successor index)`` edges, sorted by action. Steps into lava are no edges."""
    states, index = list(starts), {s: i for i, s in enumerate(starts)}
    succ: list[list[tuple[int, int]]] = [[] for _ in starts]
    queue = deque(range(len(starts)))
    while queue:
        u = queue.popleft()
        sim.restore(states[u])
        for a in actions:
            nxt = _successor(sim, states[u], a)
            if nxt is None:
                continue
            v = index.get(nxt)
            if v is None:
                v = index[nxt] = len(states)
                states.append(nxt)
                succ.append([])
                queue.append(v)
            succ[u].append((a, v))
    return states, succ


def _successor(sim: GridNav, state: NavState, action: int) -> NavState | None:
    """The state ``action`` leads to from ``state`` (``sim`` stands in it, and is left so), or
    None when nothing changes or the agent steps into lava. Turns and moves change the pose
    alone, so only pickup and toggle need a snapshot of the layout."""
    x, y, d, carried, changes = state
    if action in (ACTIONS["left"], ACTIONS["right"]):
        return x, y, (d + (3 if action == ACTIONS["left"] else 1)) % 4, carried, changes
    sim.step(action)
    if action == ACTIONS["forward"]:
        (nx, ny, _), lava = sim.pose, sim.in_lava
        sim.set_pose(x, y, d)
        return None if lava or (nx, ny) == (x, y) else (nx, ny, d, carried, changes)
    nxt = sim.snapshot()
    if nxt == state:
        return None
    sim.restore(state)
    return nxt


def descend(succ: list[list[tuple[int, int]]], dist: np.ndarray, node: int, remaining: int) -> list[int]:
    """The actions of one shortest path from ``node``, ``remaining`` steps from its goal by the
    distances ``dist``: each step takes the first ``(action, next)`` of ``succ`` one step nearer."""
    actions = []
    while remaining > 0:
        action, node = next((a, v) for a, v in succ[node] if dist[v] == remaining - 1)
        actions.append(action)
        remaining -= 1
    return actions


def backward_bfs(pred: list[list[int]], sources: list[int]) -> np.ndarray:
    """Unit-cost distances to ``sources`` along reversed edges, -1 where unreachable."""
    dist = np.full(len(pred), -1, dtype=np.int32)
    dist[sources] = 0
    frontier, k = sources, 0
    while frontier:
        k += 1
        nxt = []
        for v in frontier:
            for u in pred[v]:
                if dist[u] < 0:
                    dist[u] = k
                    nxt.append(u)
        frontier = nxt
    return dist
