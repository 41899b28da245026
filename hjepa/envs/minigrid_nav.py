"""MiniGrid navigation: env construction, action specs and a fast layout simulator.

``MiniGridEnv.step`` rebuilds the agent's partial view on every call (~3,000 steps/s under
``FullyObsWrapper``). For reward-free navigation we only need the layout, the agent's pose
and the few objects that can change state (doors, keys, boxes), so :class:`GridNav` caches
``grid.encode()`` once per layout and replays MiniGrid's rules for left / right / forward /
pickup / toggle on plain ints (a locked door opens to the key of its colour; stepping onto
lava ends MiniGrid's episode). Its observations are byte-identical to ``FullyObsWrapper``'s
image (checked in ``tests/test_envs.py``); like that image they do not show what the agent
carries, which the missing key's cell tells, as no action of ours drops it.

Layout encoding: ``(W, H, 3)`` uint8 indexed ``[x][y]`` (not ``[row][col]``), each cell
``(OBJECT_IDX, COLOR_IDX, STATE)``; the agent's cell reads ``(10, 0, dir)`` with ``dir``
0=right (+x), 1=down (+y), 2=left (-x), 3=up (-y).
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium
import numpy as np
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.core.world_object import Box
from minigrid.minigrid_env import MiniGridEnv

from hjepa.errors import ConfigError, NotNavigationEnvError, UnknownEnvError, did_you_mean
from hjepa.specs import ActionSpec

#: Our action names -> MiniGrid ``Actions`` values.
ACTIONS: dict[str, int] = {"left": 0, "right": 1, "forward": 2, "pickup": 3, "toggle": 5}

_LEFT, _RIGHT, _FORWARD, _PICKUP, _TOGGLE, _DONE = 0, 1, 2, 3, 5, 6
_EMPTY, _FLOOR, _DOOR, _KEY, _BALL, _BOX, _GOAL, _LAVA, _AGENT = (
    OBJECT_TO_IDX[k] for k in ("empty", "floor", "door", "key", "ball", "box", "goal", "lava", "agent")
)
_OPEN, _CLOSED, _LOCKED = 0, 1, 2
_AGENT_COLOR = COLOR_TO_IDX["red"]
# What a toggle does to a cell: nothing, flip an unlocked door, replace a box by its contents,
# or open a locked door when the agent carries the key of its colour.
_NO_TOGGLE, _DOOR_TOGGLE, _BOX_TOGGLE, _LOCK_TOGGLE = 0, 1, 2, 3
_PICKABLE = (_KEY, _BALL, _BOX)
Carried = tuple[int, int] | None
"""What the agent carries: ``(OBJECT_IDX, COLOR_IDX)``, or None."""
NavState = tuple
"""A snapshot of a :class:`GridNav`: ``(x, y, dir, carried, changes)``, ``changes`` the sorted
``(flat cell, obj, colour, state)`` of the cells that differ from the layout at reset."""

SUPPORTED_FAMILIES = (
    "MiniGrid grid worlds whose task is to reach a Goal square (MiniGrid-Empty-*, MiniGrid-FourRooms-v0, "
    "MiniGrid-MultiRoom-*, MiniGrid-DoorKey-*, MiniGrid-LavaGap*, MiniGrid-SimpleCrossing*, ...) and hjepa/MazeRooms-*"
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
    door = obj == _DOOR
    kind = np.where(door & (state != _LOCKED), _DOOR_TOGGLE, np.where(door, _LOCK_TOGGLE, _NO_TOGGLE))
    return np.where(obj == _BOX, _BOX_TOGGLE, kind).astype(np.uint8)


def _can_overlap(obj: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Per cell, whether a move may enter it (MiniGrid's ``can_overlap``), lava excluded: see
    :meth:`GridNav.step` for lava."""
    return (np.isin(obj, (_EMPTY, _FLOOR, _GOAL)) | ((obj == _DOOR) & (state == _OPEN))).astype(np.uint8)


def _encode(grid: Any) -> np.ndarray:
    """``grid.encode()`` without its per-cell visibility checks (~3x faster, same result)."""
    empty = (_EMPTY, 0, 0)
    cells = [empty if v is None else v.encode() for v in grid.grid]  # row-major: y * W + x
    return np.array(cells, dtype=np.uint8).reshape(grid.height, grid.width, 3).transpose(1, 0, 2).copy()


class GridNav:
    """Fast simulator of one MiniGrid layout for navigation (left / right / forward / pickup / toggle).

    Build it with :meth:`from_env` (or :func:`~hjepa.envs.layout_cache.layout_nav`). It keeps
    the layout encoding, the agent's pose and what it carries; :meth:`step` follows
    ``MiniGridEnv.step`` exactly for these actions, except that nothing ends an episode
    (collectors remove the goal; :attr:`in_lava` tells that a forward entered lava, which ends
    MiniGrid's). :meth:`rollout`, the collectors' walk, differs in one rule: lava stops a
    forward as a wall does, so walks never enter it. The object is mutable: call
    :meth:`reset` before reusing a cached one.

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
        self._pickup0, self._lava = np.isin(o, _PICKABLE).astype(np.uint8).tobytes(), (o == _LAVA).tobytes()
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
            NotNavigationEnvError: the layout's border is open.
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
        """Restore the initial layout (doors, keys, boxes), carry nothing, stand at ``start_pose``."""
        self._enc = self._enc0.copy()
        self._passable, self._toggle = bytearray(self._passable0), bytearray(self._toggle0)
        self._pickup, self._changed, self.carrying = bytearray(self._pickup0), set(), None
        self.set_pose(*self.start_pose)

    carrying: Carried
    """What the agent carries (a picked-up key, ball or box), or None."""

    @property
    def in_lava(self) -> bool:
        """Whether the agent stands on lava (MiniGrid ends the episode there, as a failure)."""
        return bool(self._lava[self._c])

    def snapshot(self) -> NavState:
        """The agent's pose, what it carries and the cells changed since reset (:data:`NavState`)."""
        x, y, d = self.pose
        changes = tuple((c, *(int(v) for v in self._enc.reshape(-1, 3)[c])) for c in sorted(self._changed)
                        if not np.array_equal(self._enc.reshape(-1, 3)[c], self._enc0.reshape(-1, 3)[c]))  # fmt: skip
        return x, y, d, self.carrying, changes

    def restore(self, state: NavState) -> None:
        """Return to a :meth:`snapshot`: the layout at reset with its changes, the pose, the carried object."""
        x, y, d, carrying, changes = state
        self.reset()
        for c, o, col, st in changes:
            self._set_cell(c, (o, col, st))
        self.carrying = carrying
        self.set_pose(x, y, d)

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
        """Apply one MiniGrid action (left=0, right=1, forward=2, pickup=3, toggle=5, done=6).

        A forward onto lava enters it (:attr:`in_lava`), as MiniGrid's does before it ends the episode.
        """
        a = int(action_env_id)
        if a == _FORWARD:
            f = self._c + self._delta[self._d]
            if self._passable[f] or self._lava[f]:
                self._c = f
        elif a == _PICKUP:
            self._apply_pickup(self._c + self._delta[self._d])
        elif a == _LEFT:
            self._d = (self._d + 3) & 3
        elif a == _RIGHT:
            self._d = (self._d + 1) & 3
        elif a == _TOGGLE:
            self._apply_toggle(self._c + self._delta[self._d])
        elif a != _DONE:
            raise ConfigError(f"GridNav simulates MiniGrid actions {sorted(ACTIONS.values())} and done=6, not {a}.")

    def _apply_pickup(self, f: int) -> tuple[int, int, int, int, int] | None:
        """Pick up the object in flat cell ``f`` when the agent carries nothing (MiniGrid's
        pickup); return ``(x, y, obj, color, state)`` of the emptied cell when it changed."""
        if self.carrying is not None or not self._pickup[f]:
            return None
        x, y = divmod(f, self.height)
        self.carrying = (int(self._enc[x, y, 0]), int(self._enc[x, y, 1]))
        self._set_cell(f, (_EMPTY, 0, 0))
        return x, y, _EMPTY, 0, 0

    def _set_cell(self, f: int, cell: tuple[int, int, int]) -> None:
        """Write flat cell ``f`` of the layout and its passable / toggle / pickup bytes."""
        x, y = divmod(f, self.height)
        self._enc[x, y] = cell
        o, s = self._enc[x, y, 0], self._enc[x, y, 2]
        self._passable[f], self._toggle[f] = int(_can_overlap(o, s)), int(_toggle_kind(o, s))
        self._pickup[f] = int(o in _PICKABLE)
        self._changed.add(f)

    def toggle_at(self, x: int, y: int) -> bool:
        """Toggle cell ``(x, y)`` as if the agent faced it (a door flips, a box opens); whether it changed."""
        return self._apply_toggle(int(x) * self.height + int(y)) is not None

    def pick_up_at(self, x: int, y: int) -> bool:
        """Pick up the object at ``(x, y)`` as if the agent faced it (a key, ball or box); whether it did."""
        return self._apply_pickup(int(x) * self.height + int(y)) is not None

    def doors(self, locked: bool = False) -> np.ndarray:
        """``(n, 2)`` int64 cells of the unlocked doors (also the locked ones with ``locked``), sorted by (x, y)."""
        kinds = (_DOOR_TOGGLE, _LOCK_TOGGLE) if locked else (_DOOR_TOGGLE,)
        return np.argwhere(np.isin(np.frombuffer(bytes(self._toggle), np.uint8).reshape(self.width, self.height), kinds))

    def keys(self) -> np.ndarray:
        """``(n, 2)`` int64 cells holding a key, sorted by (x, y)."""
        return np.argwhere(self._enc[..., 0] == _KEY)

    def _apply_toggle(self, f: int) -> tuple[int, int, int, int, int] | None:
        """Toggle flat cell ``f``; return ``(x, y, obj, color, state)`` when it changed."""
        kind = self._toggle[f]
        if kind == _NO_TOGGLE:
            return None
        x, y = divmod(f, self.height)
        o, col, st = (int(v) for v in self._enc[x, y])
        if kind == _LOCK_TOGGLE:  # MiniGrid's Door.toggle: the key of the door's colour unlocks and opens it
            if self.carrying != (_KEY, col):
                return None
            new = (o, col, _OPEN)
        elif kind == _DOOR_TOGGLE:
            new = (o, col, _CLOSED if st == _OPEN else _OPEN)
        else:  # MiniGrid's Box.toggle replaces the box by what it contains
            new = self._box_contents.get((x, y), (_EMPTY, 0, 0))
        self._set_cell(f, new)
        return (x, y, *(int(v) for v in new))

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
        bad = set(acts) - {_LEFT, _RIGHT, _FORWARD, _PICKUP, _TOGGLE, _DONE}
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
            elif a == _PICKUP and self._pickup[c + delta[d]]:
                change = self._apply_pickup(c + delta[d])
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

        Connectivity is 4-neighbour over cells the agent can stand on, passing through doors
        in any state (toggle opens them, a key a locked one) and keys (pickup clears them); the
        door and key cells themselves, lava and other objects are excluded. Taking the component around the start matters in MultiRoom,
        where the space outside the rooms is empty but unreachable. Sorted by (x, y).
        """
        return self._free.copy()

    def _reachable_cells(self) -> np.ndarray:
        o, s = self._enc0[..., 0], self._enc0[..., 2]
        stand = np.isin(o, (_EMPTY, _FLOOR, _GOAL))
        through = stand | (o == _DOOR) | (o == _KEY)
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
