"""MiniGrid navigation: env construction, action specs and a fast layout simulator.

``MiniGridEnv.step`` rebuilds the agent's partial view on every call (~3,000 steps/s under
``FullyObsWrapper``). For reward-free navigation we only need the layout, the agent's pose
and the few objects that can change state (doors, boxes), so :class:`GridNav` caches
``grid.encode()`` once per layout and replays MiniGrid's rules for left / right / forward /
toggle on plain ints. Its observations are byte-identical to ``FullyObsWrapper``'s image
(checked in ``tests/test_envs.py``).

Layout encoding: ``(W, H, 3)`` uint8 indexed ``[x][y]`` (not ``[row][col]``), each cell
``(OBJECT_IDX, COLOR_IDX, STATE)``; the agent's cell reads ``(10, 0, dir)`` with ``dir``
0=right (+x), 1=down (+y), 2=left (-x), 3=up (-y).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import gymnasium
import numpy as np
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.core.world_object import Box
from minigrid.minigrid_env import MiniGridEnv

from hjepa.errors import ConfigError, NotNavigationEnvError, UnknownEnvError, did_you_mean
from hjepa.specs import ActionSpec

#: Our action names -> MiniGrid ``Actions`` values.
ACTIONS: dict[str, int] = {"left": 0, "right": 1, "forward": 2, "toggle": 5}

_LEFT, _RIGHT, _FORWARD, _TOGGLE, _DONE = 0, 1, 2, 5, 6
_EMPTY, _FLOOR, _DOOR, _BOX, _GOAL, _LAVA, _AGENT = (
    OBJECT_TO_IDX[k] for k in ("empty", "floor", "door", "box", "goal", "lava", "agent")
)
_OPEN, _CLOSED, _LOCKED = 0, 1, 2
_AGENT_COLOR = COLOR_TO_IDX["red"]
# What a toggle does to a cell: nothing, flip an unlocked door, or replace a box by its contents.
_NO_TOGGLE, _DOOR_TOGGLE, _BOX_TOGGLE = 0, 1, 2

SUPPORTED_FAMILIES = (
    "MiniGrid grid worlds without lava (MiniGrid-Empty-*, MiniGrid-FourRooms-v0, "
    "MiniGrid-MultiRoom-*, MiniGrid-SimpleCrossing*, ...) and hjepa/MazeRooms-v0"
)


def make_minigrid(env_id: str, **kwargs: Any) -> MiniGridEnv:
    """Build the raw (unwrapped) MiniGrid env registered as ``env_id``.

    Args:
        env_id: a gymnasium id, e.g. ``"MiniGrid-FourRooms-v0"`` or ``"hjepa/MazeRooms-v0"``.
        **kwargs: constructor arguments forwarded to ``gymnasium.make``.

    Returns:
        The unwrapped env; call ``reset(seed=...)`` on it to fix a layout.

    Raises:
        UnknownEnvError: gymnasium does not know ``env_id`` (the message suggests close ids).
        NotNavigationEnvError: the env is not a MiniGrid grid world.
    """
    import hjepa.envs  # noqa: F401  -- registers hjepa/* ids before we look them up

    try:
        gymnasium.spec(env_id)
    except gymnasium.error.Error as e:
        hint = did_you_mean(env_id, gymnasium.registry)
        raise UnknownEnvError(
            f"Unknown environment id '{env_id}' ({e}).{hint} hjepa supports {SUPPORTED_FAMILIES}."
        ) from None
    env = gymnasium.make(env_id, **kwargs).unwrapped
    if not isinstance(env, MiniGridEnv):
        env.close()
        raise NotNavigationEnvError(
            f"'{env_id}' is a {type(env).__name__}, not a MiniGrid grid world. hjepa navigates "
            f"{SUPPORTED_FAMILIES}; PointMaze and other continuous mazes arrive with the "
            "`nav` extra (pip install 'hjepa[nav]')."
        )
    return env


def action_spec(action_subset: Sequence[str]) -> ActionSpec:
    """The discrete :class:`ActionSpec` of a subset of MiniGrid's navigation actions.

    Args:
        action_subset: names from :data:`ACTIONS`, in the order of our action indices.

    Raises:
        ConfigError: an unknown, repeated or empty list of names.
    """
    names = tuple(action_subset)
    unknown = [a for a in names if a not in ACTIONS]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(
            f"Invalid action subset {list(names)}: give distinct names from {list(ACTIONS)}."
        )
    return ActionSpec(kind="discrete", n=len(names), env_actions=tuple(ACTIONS[a] for a in names), names=names)


def _toggle_kind(obj: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Per cell, what toggling it does (``_NO_TOGGLE``, ``_DOOR_TOGGLE`` or ``_BOX_TOGGLE``)."""
    unlocked_door = (obj == _DOOR) & (state != _LOCKED)  # no action of ours picks up a key
    return np.where(unlocked_door, _DOOR_TOGGLE, np.where(obj == _BOX, _BOX_TOGGLE, _NO_TOGGLE)).astype(np.uint8)


def _can_overlap(obj: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Per cell, whether the agent may stand on it (MiniGrid's ``can_overlap``), lava excluded."""
    return (np.isin(obj, (_EMPTY, _FLOOR, _GOAL)) | ((obj == _DOOR) & (state == _OPEN))).astype(np.uint8)


def _encode(grid: Any) -> np.ndarray:
    """``grid.encode()`` without its per-cell visibility checks (~3x faster, same result)."""
    empty = (_EMPTY, 0, 0)
    cells = [empty if v is None else v.encode() for v in grid.grid]  # row-major: y * W + x
    return np.array(cells, dtype=np.uint8).reshape(grid.height, grid.width, 3).transpose(1, 0, 2).copy()


class GridNav:
    """Fast simulator of one MiniGrid layout for navigation (left / right / forward / toggle).

    Build it with :meth:`from_env` (or :func:`layout_nav`). It keeps the layout encoding and
    the agent's pose; :meth:`step` and :meth:`rollout` follow ``MiniGridEnv.step`` exactly for
    these actions, except that reaching the goal does not end anything (collectors remove the
    goal). The object is mutable: call :meth:`reset` before reusing a cached one.

    Attributes:
        width: W, cells along x.
        height: H, cells along y.
        start_pose: ``(x, y, dir)`` the env's ``reset`` placed the agent at.
        goal: ``(x, y)`` of the goal square found in the layout (also when removed), or None.
    """

    def __init__(
        self,
        encoding: np.ndarray,
        start_pose: tuple[int, int, int],
        box_contents: dict[tuple[int, int], tuple[int, int, int]] | None = None,
        goal: tuple[int, int] | None = None,
    ) -> None:
        """Wrap a layout encoding ``(W, H, 3)`` uint8 (no agent) and a start pose."""
        enc = np.array(encoding, dtype=np.uint8, copy=True)
        if enc.ndim != 3 or enc.shape[2] != 3:
            raise ValueError(f"A layout encoding has shape (W, H, 3), got {enc.shape}.")
        if (enc[..., 0] == _LAVA).any():
            raise NotNavigationEnvError("This layout has lava; hjepa's navigation simulator does not model it.")
        self.width, self.height = int(enc.shape[0]), int(enc.shape[1])
        self.start_pose = tuple(int(v) for v in start_pose)
        self.goal = goal
        self._enc0 = enc
        self._box_contents = dict(box_contents or {})
        # Forward moves the flat index c = x * H + y by one of these, indexed by direction.
        self._delta = (self.height, 1, -self.height, -1)
        # Flat [x][y] cell bytes: indexing a bytearray is ~10x faster than a numpy array.
        o, s = enc[..., 0], enc[..., 2]
        self._passable0, self._toggle0 = _can_overlap(o, s).tobytes(), _toggle_kind(o, s).tobytes()
        self.reset()
        self._free = self._reachable_cells()

    @classmethod
    def from_env(cls, env: MiniGridEnv, remove_goal: bool = True) -> "GridNav":
        """Cache the layout and start pose of ``env`` (call ``env.reset(seed=...)`` first).

        Args:
            env: an unwrapped MiniGrid env right after ``reset``.
            remove_goal: replace goal squares by empty floor; a random walk would otherwise
                end its episode on the goal.

        Raises:
            NotNavigationEnvError: the layout has lava or an open border.
        """
        if env.grid is None or env.agent_pos is None:
            raise ValueError("Call env.reset(seed=...) before GridNav.from_env(env).")
        enc = _encode(env.grid)
        goals = np.argwhere(enc[..., 0] == _GOAL)
        goal = (int(goals[0][0]), int(goals[0][1])) if len(goals) else None
        if remove_goal and len(goals):
            enc[goals[:, 0], goals[:, 1]] = (_EMPTY, 0, 0)
        boxes = {}
        for x, y in np.argwhere(enc[..., 0] == _BOX):
            box = env.grid.get(int(x), int(y))
            inner = box.contains.encode() if isinstance(box, Box) and box.contains else (_EMPTY, 0, 0)
            boxes[(int(x), int(y))] = tuple(int(v) for v in inner)
        x, y = env.agent_pos
        return cls(enc, (int(x), int(y), int(env.agent_dir)), boxes, goal)

    # ----------------------------------------------------------------------------- state
    def reset(self) -> None:
        """Restore the initial layout (doors, boxes) and put the agent at ``start_pose``."""
        self._enc = self._enc0.copy()
        self._passable, self._toggle = bytearray(self._passable0), bytearray(self._toggle0)
        self.set_pose(*self.start_pose)

    @property
    def pose(self) -> tuple[int, int, int]:
        """The agent's ``(x, y, dir)``."""
        return self._c // self.height, self._c % self.height, self._d

    def set_pose(self, x: int, y: int, d: int) -> None:
        """Put the agent at cell ``(x, y)`` facing ``d`` (no check that the cell is free)."""
        # The border is excluded: a step out of the grid would wrap around the flat index.
        if not (0 < x < self.width - 1 and 0 < y < self.height - 1 and 0 <= d < 4):
            raise ValueError(f"Pose ({x}, {y}, {d}) is not inside the border of a {self.width}x{self.height} grid.")
        self._c, self._d = int(x) * self.height + int(y), int(d)

    @property
    def encoding(self) -> np.ndarray:
        """The current layout ``(W, H, 3)`` uint8 without the agent.

        A read-only view that follows later toggles; copy it to keep a snapshot.
        """
        view = self._enc.view()
        view.flags.writeable = False
        return view

    @property
    def walkable(self) -> np.ndarray:
        """``(W, H)`` bool: cells the agent can stand on now (empty, floor, goal, open door)."""
        return np.frombuffer(bytes(self._passable), dtype=np.uint8).reshape(self.width, self.height) > 0

    # ----------------------------------------------------------------------------- dynamics
    def step(self, action_env_id: int) -> None:
        """Apply one MiniGrid action (left=0, right=1, forward=2, toggle=5, done=6)."""
        a = int(action_env_id)
        if a == _FORWARD:
            f = self._c + self._delta[self._d]
            if self._passable[f]:
                self._c = f
        elif a == _LEFT:
            self._d = (self._d + 3) & 3
        elif a == _RIGHT:
            self._d = (self._d + 1) & 3
        elif a == _TOGGLE:
            self._apply_toggle(self._c + self._delta[self._d])
        elif a != _DONE:
            raise ConfigError(f"GridNav simulates MiniGrid actions {sorted(ACTIONS.values())} and done=6, not {a}.")

    def toggle_at(self, x: int, y: int) -> bool:
        """Toggle cell ``(x, y)`` as if the agent faced it (a door flips, a box opens); whether it changed."""
        return self._apply_toggle(int(x) * self.height + int(y)) is not None

    def doors(self) -> np.ndarray:
        """``(n, 2)`` int64 cells of the unlocked doors, sorted by (x, y)."""
        return np.argwhere(np.frombuffer(bytes(self._toggle), np.uint8).reshape(self.width, self.height) == _DOOR_TOGGLE)

    def _apply_toggle(self, f: int) -> tuple[int, int, int, int, int] | None:
        """Toggle flat cell ``f``; return ``(x, y, obj, color, state)`` when it changed."""
        kind = self._toggle[f]
        if kind == _NO_TOGGLE:
            return None
        x, y = divmod(f, self.height)
        cell = self._enc[x, y]
        if kind == _DOOR_TOGGLE:
            cell[2] = _CLOSED if cell[2] == _OPEN else _OPEN
        else:  # MiniGrid's Box.toggle replaces the box by what it contains
            cell[:] = self._box_contents.get((x, y), (_EMPTY, 0, 0))
        self._passable[f] = int(_can_overlap(cell[0], cell[2]))
        self._toggle[f] = int(_toggle_kind(cell[0], cell[2]))
        return x, y, int(cell[0]), int(cell[1]), int(cell[2])

    def rollout(self, env_actions: Sequence[int], out: np.ndarray | None = None) -> np.ndarray:
        """Apply a sequence of MiniGrid actions; return poses and write observations.

        Args:
            env_actions: T MiniGrid action ids (left / right / forward / toggle / done).
            out: optional ``(>= T+1, W, H, 3)`` uint8 buffer; its first T+1 entries receive the
                observations before the first action and after each action.

        Returns:
            ``(T+1, 3)`` int16 poses ``(x, y, dir)``, the first one the pose before acting.
        """
        acts = [int(a) for a in env_actions]
        bad = set(acts) - {_LEFT, _RIGHT, _FORWARD, _TOGGLE, _DONE}
        if bad:
            raise ConfigError(f"GridNav cannot simulate MiniGrid actions {sorted(bad)}.")
        enc_before = self._enc.copy() if out is not None else None
        cells, dirs, changes = self._walk(acts)
        poses = np.empty((len(acts) + 1, 3), dtype=np.int16)
        c = np.asarray(cells, dtype=np.int64)
        poses[:, 0], poses[:, 1], poses[:, 2] = c // self.height, c % self.height, dirs
        if out is not None:
            self._write_obs(out[: len(acts) + 1], enc_before, poses, changes)
        return poses

    def _walk(self, acts: list[int]) -> tuple[list[int], list[int], list[tuple[int, ...]]]:
        # The hot loop of data collection: locals only, no numpy, no allocation per step.
        c, d, delta, passable, toggle = self._c, self._d, self._delta, self._passable, self._toggle
        cells, dirs, changes = [c], [d], []
        for t, a in enumerate(acts, start=1):
            if a == _FORWARD:
                f = c + delta[d]
                if passable[f]:
                    c = f
            elif a == _LEFT:
                d = (d + 3) & 3
            elif a == _RIGHT:
                d = (d + 1) & 3
            elif a == _TOGGLE and toggle[c + delta[d]]:
                change = self._apply_toggle(c + delta[d])
                if change is not None:
                    changes.append((t, *change))
            cells.append(c)
            dirs.append(d)
        self._c, self._d = c, d
        return cells, dirs, changes

    @staticmethod
    def _write_obs(out: np.ndarray, enc: np.ndarray, poses: np.ndarray, changes: list[tuple[int, ...]]) -> None:
        out[:] = enc
        # Changes are chronological, so a later change overwrites the tail of an earlier one.
        for t, x, y, o, col, s in changes:
            out[t:, x, y] = (o, col, s)
        idx = np.arange(len(poses))
        xs, ys = poses[:, 0], poses[:, 1]
        out[idx, xs, ys, 0] = _AGENT
        out[idx, xs, ys, 1] = _AGENT_COLOR
        out[idx, xs, ys, 2] = poses[:, 2]

    def observation(self, out: np.ndarray | None = None) -> np.ndarray:
        """The fully observed grid ``(W, H, 3)`` uint8, as ``FullyObsWrapper``'s ``image``."""
        if out is None:
            out = np.empty_like(self._enc)
        out[...] = self._enc
        x, y, d = self.pose
        out[x, y] = (_AGENT, _AGENT_COLOR, d)
        return out

    # ----------------------------------------------------------------------------- layout
    def free_cells(self) -> np.ndarray:
        """Cells ``(n, 2)`` int64 ``(x, y)`` the agent can start on, reachable from the start.

        Connectivity is 4-neighbour over cells the agent can stand on, passing through
        unlocked doors in any state (toggle opens them); locked doors and the door cells
        themselves are excluded. Taking the component around the start matters in MultiRoom,
        where the space outside the rooms is empty but unreachable. Sorted by (x, y).
        """
        return self._free.copy()

    def _reachable_cells(self) -> np.ndarray:
        o, s = self._enc0[..., 0], self._enc0[..., 2]
        stand = np.isin(o, (_EMPTY, _FLOOR, _GOAL))
        through = stand | ((o == _DOOR) & (s != _LOCKED))
        inner = through.copy()
        inner[[0, -1], :] = inner[:, [0, -1]] = False  # so the flood never indexes off the grid
        x0, y0, _ = self.start_pose
        h, start = self.height, x0 * self.height + y0
        open_, seen = bytearray(inner.tobytes()), bytearray(inner.size)
        seen[start] = 1
        stack = [start]
        while stack:  # flood fill on flat [x][y] indices: pure Python is fastest at these sizes
            c = stack.pop()
            for n in (c + h, c - h, c + 1, c - 1):
                if open_[n] and not seen[n]:
                    seen[n] = 1
                    stack.append(n)
        mask = np.frombuffer(bytes(seen), dtype=bool).reshape(self.width, h)
        near = np.zeros_like(mask)  # cells one step from the component
        near[1:] |= mask[:-1]
        near[:-1] |= mask[1:]
        near[:, 1:] |= mask[:, :-1]
        near[:, :-1] |= mask[:, 1:]
        if (near & through & ~inner).any():
            # Forward from the border would leave the grid (MiniGrid asserts): walls must enclose.
            raise NotNavigationEnvError("The grid's border is reachable from the start: walls must enclose the agent.")
        mask = mask & stand
        mask[x0, y0] = True
        return np.argwhere(mask).astype(np.int64)


def layout_nav(env_id: str, layout_seed: int, remove_goal: bool = True, **kwargs: Any) -> GridNav:
    """The :class:`GridNav` of ``env_id``'s layout after ``reset(seed=layout_seed)``."""
    env = make_minigrid(env_id, **kwargs)
    try:
        env.reset(seed=int(layout_seed))
        return GridNav.from_env(env, remove_goal=remove_goal)
    finally:
        env.close()


class LayoutCache:
    """Per-seed :class:`GridNav` of one env, built once (``env.reset`` costs ~1 ms).

    Least-recently-used entries beyond ``capacity`` are dropped, so that collecting over
    millions of random layouts keeps bounded memory. Entries are shared: :meth:`get` resets
    the returned simulator to its start pose and initial doors.
    """

    def __init__(self, env_id: str, remove_goal: bool = True, capacity: int = 4096, **kwargs: Any) -> None:
        """Build the env once; ``kwargs`` go to :func:`make_minigrid`."""
        self.env_id = env_id
        self.env = make_minigrid(env_id, **kwargs)
        self.remove_goal = remove_goal
        self.capacity = int(capacity)
        self._navs: OrderedDict[int, GridNav] = OrderedDict()

    def get(self, layout_seed: int) -> GridNav:
        """The reset simulator of layout ``layout_seed``."""
        seed = int(layout_seed)
        nav = self._navs.pop(seed, None)
        if nav is None:
            self.env.reset(seed=seed)
            nav = GridNav.from_env(self.env, remove_goal=self.remove_goal)
        else:
            nav.reset()
        self._navs[seed] = nav
        if len(self._navs) > self.capacity:
            self._navs.popitem(last=False)
        return nav
