"""Reward-free PointMaze data: random starts over free cells, temporally correlated random forces.

:func:`hjepa.data.collect.collect` hands PointMaze env ids to :func:`collect_pointmaze`; the
dataset has the same on-disk format as the gridworld data (``hjepa.data.storage``):

| array | PointMaze content |
| --- | --- |
| ``obs`` | ``(N, 4)`` float32 ``(x, y, vx, vy)``, or ``(N, h, w, 3)`` uint8 top-down images |
| ``actions`` | ``(N, 2)`` float32 forces in [-1, 1], NaN at each episode's last step |
| ``pose`` | ``(N, 3)`` int16: x and y in millimetres, the flat cell index (privileged) |
| ``layout`` | the collector's ``layout_seed`` (one maze) |

Each episode starts at rest at a uniformly random free cell, jittered like the env's resets
(:data:`~hjepa.envs.pointmaze.START_NOISE`). Forces are uniform in [-1, 1]^2; with
``repeat_prob`` (momentum) a step keeps the previous force, so the ball accelerates along
straight runs and reaches far instead of jittering in place. The walk steps the MuJoCo model
directly (:class:`~hjepa.envs.pointmaze.PointMazeSim`, ~27,000 steps/s).

With ``action_repeat`` k, each force is held for k physics steps and every k-th state is
recorded: a transition spans k env steps, as the model's actions do in the episodes
(``ActionSpec.repeat``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from hjepa.data.storage import DatasetMeta, DatasetWriter
from hjepa.envs.maze_oracle import noisy_point
from hjepa.envs.pointmaze import OBS_KINDS, START_NOISE, Observer, PointMazeSim, action_spec, maze_info, pose_record
from hjepa.errors import ConfigError

if TYPE_CHECKING:
    from hjepa.data.collect import CollectConfig


def check_config(cfg: "CollectConfig") -> None:
    """PointMaze-specific checks of a :class:`CollectConfig` (``action_subset`` is unused)."""
    maze_info(cfg.env_id)  # UnknownEnvError for an unknown maze
    if cfg.obs_mode not in OBS_KINDS:
        raise ConfigError(f"Invalid CollectConfig: PointMaze observations are {OBS_KINDS}, got {cfg.obs_mode!r}.")
    if cfg.layouts != "fixed":
        raise ConfigError("Invalid CollectConfig: a PointMaze has one maze; use layouts='fixed'.")


def momentum_forces(rng: np.random.Generator, length: int, dim: int, repeat_prob: float) -> np.ndarray:
    """``(length, dim)`` float32 forces uniform in [-1, 1], each step keeping the previous
    force with probability ``repeat_prob``."""
    fresh = rng.uniform(-1.0, 1.0, size=(length, dim))
    repeat = rng.random(length) < repeat_prob
    repeat[0] = False
    source = np.maximum.accumulate(np.where(repeat, 0, np.arange(length)))
    return fresh[source].astype(np.float32)


def collect_pointmaze(cfg: "CollectConfig", out: str | os.PathLike[str], progress: bool = True) -> DatasetMeta:
    """Collect ``cfg.transitions`` reward-free PointMaze transitions into the folder ``out``.

    Args:
        cfg: a :class:`CollectConfig` whose ``env_id`` is a PointMaze; ``obs_mode`` "state"
            or "image" (``image_tile`` pixels per cell), ``repeat_prob`` the forces' momentum.
        out: the dataset folder to create (replaced if present; it appears only when complete).
        progress: show a rich progress bar.
    """
    from hjepa.data.collect import _progress_bar, episode_lengths  # collect imports this module lazily

    check_config(cfg)
    sim = PointMazeSim(cfg.env_id)
    maze = sim.maze
    observer = Observer(maze, cfg.obs_mode, cfg.image_tile)
    rng = np.random.default_rng(cfg.seed)
    lengths = episode_lengths(cfg.transitions, cfg.episode_len)
    k = cfg.action_repeat
    states = np.empty((cfg.episode_len * k + 1, 4))
    obs_buf = np.empty((cfg.episode_len + 1, *observer.spec.shape), dtype=observer.spec.dtype)
    writer = DatasetWriter(
        out, env_id=cfg.env_id, obs_spec=observer.spec, action_spec=action_spec(k),
        num_steps=int(lengths.sum() + len(lengths)), num_episodes=len(lengths), seed=cfg.seed,
        layouts="fixed", collector=cfg.to_dict(),
    )  # fmt: skip
    with writer, _progress_bar(progress, cfg.transitions, f"collect {cfg.env_id}") as advance:
        for length in lengths.tolist():
            cell = maze.free_cells[int(rng.integers(len(maze.free_cells)))]
            sim.set_state(noisy_point(maze, cell, rng, START_NOISE))
            forces = momentum_forces(rng, length, 2, cfg.repeat_prob)
            traj = sim.rollout(np.repeat(forces, k, axis=0), out=states[: length * k + 1])[::k]
            obs = observer(traj, out=obs_buf[: length + 1])
            writer.append_episode(obs, forces, cfg.layout_seed, pose_record(traj, maze))
            advance(length)
    return writer.meta
