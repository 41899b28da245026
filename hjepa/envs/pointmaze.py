"""PointMaze: continuous 2-D navigation in MuJoCo mazes (the ``nav`` extra).

| env id | maze | step limit | source |
| --- | --- | --- | --- |
| ``PointMaze_UMaze-v3`` | 5 x 5 | 300 | gymnasium-robotics |
| ``PointMaze_Medium-v3`` | 8 x 8 | 600 | gymnasium-robotics |
| ``PointMaze_Large-v3`` | 9 x 12 | 800 | gymnasium-robotics |
| ``hjepa/PointMaze_Giant-v0`` | 12 x 16 | 1000 | OGBench's giant map and its five tasks on gymnasium-robotics' PointMaze |

A force-actuated ball (2-D action in [-1, 1], ``dt`` 0.01 s, speed clipped to 5 m/s) rolls in
a maze of 1 m cells; success is the env's: within :data:`SUCCESS_RADIUS` of the goal.

:class:`PointMazeSim` steps the env's own MuJoCo model directly (``mj_step`` with the env's
velocity clipping: the same trajectories as ``env.step``, tested, ~5x faster) and never
renders: nothing needs OpenGL. Observations (:class:`Observer`) are the state vector
``(x, y, vx, vy)`` or a top-down image from :class:`~hjepa.envs.maze_raster.MazeRaster`;
the goal observation is the observation at the goal position at rest.

The giant maze: OGBench's ``pointmaze-giant-v0`` (Park et al. 2024, "OGBench: Benchmarking
Offline Goal-Conditioned RL"; map and task cells from ``ogbench/locomaze/maze.py``,
https://github.com/seohongpark/ogbench) is not installable here, so :data:`GIANT` copies its
map (``maze_type='giant'``) and its five evaluation tasks (start cell, goal cell) and runs
them on gymnasium-robotics' PointMaze. Cells ``(i, j)`` are the same; the physics is not:
OGBench's cells are 4 m with a goal tolerance of 1 m (a quarter cell) and its own point body,
ours are 1 m with gymnasium-robotics' 0.45 m (about half a cell). Its figures (OGBench Table 2)
therefore stand beside ours, not against them.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hjepa.envs.maze_oracle import Cell, MazeMap
from hjepa.envs.maze_raster import MazeRaster
from hjepa.errors import ConfigError, MissingExtraError, UnknownEnvError, did_you_mean
from hjepa.specs import ActionSpec, ObsSpec

SUCCESS_RADIUS = 0.45
"""The env's success criterion: distance to the goal <= 0.45 m."""
MAX_SPEED = 5.0
"""gymnasium-robotics clips each velocity component to [-5, 5] m/s before every step."""
START_NOISE = 0.25
"""Uniform jitter of starts and goals around a cell centre, in cells (gymnasium-robotics' and OGBench's)."""
OBS_KINDS = ("state", "image")
GIANT_ID = "hjepa/PointMaze_Giant-v0"


@dataclass(frozen=True)
class MazeInfo:
    """A supported maze.

    Attributes:
        env_id: its gymnasium id.
        maze: the map.
        max_steps: the env's step limit (``max_episode_steps``).
        tasks: the maze's own evaluation tasks ``(start cell, goal cell)``, 1-based ids.
    """

    env_id: str
    maze: MazeMap
    max_steps: int
    tasks: tuple[tuple[Cell, Cell], ...] = ()


UMAZE = MazeMap(("#####", "#...#", "###.#", "#...#", "#####"))
MEDIUM = MazeMap(("########", "#..##..#", "#..#...#", "##...###", "#..#...#", "#.#..#.#", "#...#..#", "########"))
LARGE = MazeMap((
    "############", "#....#.....#", "#.##.#.#.#.#", "#......#...#", "#.####.###.#",
    "#..#.#.....#", "##.#.#.#.###", "#..#...#...#", "############",
))  # fmt: skip
GIANT = MazeMap((
    "################", "#.#......##....#", "#.#.##.#.#..##.#", "#...#..#...#...#",
    "#.###.######.#.#", "#...#...#....#.#", "###.#.#..#.#.###", "#...#..#...#...#",
    "#.#.#.######.#.#", "#.###...#...##.#", "#.....#...#....#", "################",
))  # fmt: skip
GIANT_TASKS: tuple[tuple[Cell, Cell], ...] = (
    ((1, 1), (10, 14)), ((1, 14), (10, 1)), ((8, 14), (1, 1)), ((8, 3), (5, 12)), ((5, 9), (3, 8)),
)
"""OGBench pointmaze-giant's five evaluation tasks ``(init_ij, goal_ij)``, task ids 1..5."""

MAZES: dict[str, MazeInfo] = {
    "PointMaze_UMaze-v3": MazeInfo("PointMaze_UMaze-v3", UMAZE, 300),
    "PointMaze_Medium-v3": MazeInfo("PointMaze_Medium-v3", MEDIUM, 600),
    "PointMaze_Large-v3": MazeInfo("PointMaze_Large-v3", LARGE, 800),
    GIANT_ID: MazeInfo(GIANT_ID, GIANT, 1000, GIANT_TASKS),
}


def is_pointmaze(env_id: str) -> bool:
    """Whether ``env_id`` names a PointMaze (a supported one or not): no import needed."""
    return isinstance(env_id, str) and (env_id in MAZES or env_id.split("/")[-1].lower().startswith("pointmaze"))


def maze_info(env_id: str) -> MazeInfo:
    """The :class:`MazeInfo` of ``env_id``, or :class:`UnknownEnvError` listing the mazes."""
    if env_id not in MAZES:
        raise UnknownEnvError(f"Unknown maze '{env_id}'.{did_you_mean(env_id, MAZES)} hjepa navigates the "
                              f"PointMazes {', '.join(MAZES)}.")  # fmt: skip
    return MAZES[env_id]


def require_nav() -> Any:
    """Import and return ``gymnasium_robotics`` (registering its envs), or explain the extra."""
    try:
        import gymnasium
        import mujoco  # noqa: F401

        # Its import prints a notice about the Adroit hand envs to stderr; PointMaze is unaffected.
        with contextlib.redirect_stderr(io.StringIO()):
            import gymnasium_robotics
    except ImportError as exc:
        raise MissingExtraError(
            f"PointMaze needs MuJoCo and gymnasium-robotics, which are not installed ({exc}). "
            'Install the navigation extra: pip install "hjepa[nav]".'
        ) from None
    gymnasium.register_envs(gymnasium_robotics)
    return gymnasium_robotics


def action_spec(repeat: int = 1) -> ActionSpec:
    """The continuous force ``(fx, fy)`` in [-1, 1]^2, held for ``repeat`` physics steps."""
    return ActionSpec(kind="continuous", dim=2, low=-1.0, high=1.0, names=("force_x", "force_y"), repeat=repeat)


# ----------------------------------------------------------------------------- simulator
class PointMazeSim:
    """Steps the env's MuJoCo model directly; states are ``(x, y, vx, vy)`` float64.

    ``step`` does what gymnasium-robotics' ``PointEnv.step`` does (clip the action to
    [-1, 1], clip the velocity to +-5 m/s, one ``mj_step``) without building observation
    dicts, so a rollout runs ~27,000 steps/s on one core against ~5,000 through ``env.step``.

    Attributes:
        info: the maze.
        goal: a goal position set by the caller (evaluation, the oracle agent), or None.
    """

    def __init__(self, env_id: str) -> None:
        self.info = maze_info(env_id)
        require_nav()
        import gymnasium
        import mujoco

        self._mujoco = mujoco
        self.env = gymnasium.make(env_id).unwrapped  # keeps the model's temporary XML alive
        self.env.reset(seed=0)
        self.model, self.data = self.env.point_env.model, self.env.point_env.data
        self.goal: np.ndarray | None = None

    @property
    def maze(self) -> MazeMap:
        return self.info.maze

    @property
    def state(self) -> np.ndarray:
        """``(4,)`` float64 ``(x, y, vx, vy)`` (a copy)."""
        return np.concatenate([self.data.qpos, self.data.qvel])

    @property
    def xy(self) -> np.ndarray:
        return self.data.qpos.copy()

    def set_state(self, xy: Sequence[float], velocity: Sequence[float] = (0.0, 0.0)) -> None:
        """Place the ball at ``xy`` with ``velocity`` (as the env's reset does: reset, set, forward)."""
        m, d = self.model, self.data
        self._mujoco.mj_resetData(m, d)
        d.qpos[:], d.qvel[:] = xy, velocity
        self._mujoco.mj_forward(m, d)

    def step(self, action: Sequence[float]) -> None:
        """One env step with force ``action`` (clipped to [-1, 1])."""
        d = self.data
        np.clip(d.qvel, -MAX_SPEED, MAX_SPEED, out=d.qvel)
        d.ctrl[:] = np.clip(action, -1.0, 1.0)
        self._mujoco.mj_step(self.model, d)

    def rollout(self, actions: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Apply ``actions "t 2"`` from the current state; return states ``"(t+1) 4"``."""
        acts = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        states = out if out is not None else np.empty((len(acts) + 1, 4))
        m, d, mj_step = self.model, self.data, self._mujoco.mj_step
        qpos, qvel, ctrl = d.qpos, d.qvel, d.ctrl
        states[0, :2], states[0, 2:] = qpos, qvel
        for t, a in enumerate(acts, start=1):  # the hot loop of collection: no allocation
            np.clip(qvel, -MAX_SPEED, MAX_SPEED, out=qvel)
            ctrl[:] = a
            mj_step(m, d)
            states[t, :2], states[t, 2:] = qpos, qvel
        return states[: len(acts) + 1]

    def success(self) -> bool:
        """The env's criterion: within :data:`SUCCESS_RADIUS` of :attr:`goal`."""
        if self.goal is None:
            raise ConfigError("PointMazeSim.success needs a goal: set sim.goal first.")
        return bool(np.linalg.norm(self.data.qpos - self.goal) <= SUCCESS_RADIUS)


# ----------------------------------------------------------------------------- observations
class Observer:
    """Turns states ``"... 4"`` into observations of one kind.

    Args:
        maze: the map (for images).
        kind: "state" (``(4,)`` float32 ``(x, y, vx, vy)``) or "image" (top-down RGB).
        tile: image pixels per cell side (the image is ``rows * tile`` by ``cols * tile``).
    """

    def __init__(self, maze: MazeMap, kind: str = "state", tile: int = 8) -> None:
        if kind not in OBS_KINDS:
            raise ConfigError(f"PointMaze observations are {OBS_KINDS}, not {kind!r}.")
        self.kind = kind
        self.raster = MazeRaster(maze, tile) if kind == "image" else None

    @property
    def spec(self) -> ObsSpec:
        if self.raster is None:
            return ObsSpec(kind="state", shape=(4,), dtype="float32")
        return ObsSpec(kind="image", shape=self.raster.shape, dtype="uint8")

    def __call__(self, states: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Observations of ``states "... 4"``: ``"... 4"`` float32 or ``"... h w 3"`` uint8."""
        states = np.asarray(states)
        if self.raster is not None:
            return self.raster.render(states[..., :2], out=out)
        if out is None:
            return states.astype(np.float32)
        out[...] = states
        return out

    def at_rest(self, xy: Sequence[float]) -> np.ndarray:
        """The observation at position ``xy`` with zero velocity (the goal observation)."""
        return self(np.array([float(xy[0]), float(xy[1]), 0.0, 0.0]))


def pose_record(states: np.ndarray, maze: MazeMap) -> np.ndarray:
    """Dataset poses ``"t 3"`` int16: x and y in millimetres, and the flat cell index ``i * cols + j``.

    The dataset format stores int16 poses (MiniGrid's ``(x, y, dir)``); millimetres keep the
    position to 1 mm within +-32 m.
    """
    xy = np.asarray(states)[..., :2]
    (w, h), s, cols = maze.extent, maze.scaling, maze.shape[1]
    i = np.floor((h - xy[..., 1]) / s).astype(np.int64)
    j = np.floor((xy[..., 0] + w) / s).astype(np.int64)
    out = np.empty((*xy.shape[:-1], 3), dtype=np.int16)
    out[..., :2] = np.round(xy * 1000.0)
    out[..., 2] = i * cols + j
    return out
