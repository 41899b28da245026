"""Reward-free data collection: random walks in MiniGrid layouts, written as a dataset.

Random walks explore slowly (only ~1 in 4 uniform actions moves the agent), so every episode
starts at a uniformly random free cell and direction; that alone covers every cell of
FourRooms where a fixed start left 30% unvisited. ``repeat_prob`` adds momentum (repeat the
previous action) for straighter, longer-reaching walks.

The walk runs on :class:`~hjepa.envs.GridNav` rather than ``env.step`` (~60x faster, same
observations) and writes each episode's observations into the dataset's memory maps at once.
A walk never enters lava (a forward into it leaves the agent in place: entering ends MiniGrid's
episode), so the data show lava as impassable.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable, Iterator

import numpy as np

from hjepa.data.storage import LAYOUT_MODES, DatasetMeta, DatasetWriter
from hjepa.envs.layouts import layout_key, layout_keys
from hjepa.envs.minigrid_checks import check_goal_reaching
from hjepa.envs.layout_cache import LayoutCache
from hjepa.envs.minigrid_nav import GridNav, action_spec
from hjepa.envs.pointmaze import is_pointmaze
from hjepa.envs.raster import grid_to_rgb
from hjepa.errors import ConfigError
from hjepa.specs import ObsSpec

OBS_MODES = ("grid", "image", "state")  # "state": PointMaze only
_MAX_SEED = 2**31 - 1
_MAX_REDRAWS = 1000
"""Held-out layouts drawn in a row after which an env is judged to have too few layouts to hold
them out (all of MiniGrid-Empty-*'s resets give one layout)."""


@dataclass(frozen=True)
class CollectConfig:
    """How to collect a reward-free random-walk dataset."""

    env_id: str = "MiniGrid-FourRooms-v0"
    """Gymnasium id of a MiniGrid navigation env (or hjepa/MazeRooms-v0)."""
    transitions: int = 100_000
    """Total number of actions over all episodes (the dataset holds this many transitions)."""
    episode_len: int = 100
    """Actions per episode; the last episode is shorter so the total is exactly `transitions`."""
    layouts: str = "fixed"
    """"fixed": every episode in layout `layout_seed`; "random": a new layout seed per episode."""
    layout_seed: int = 0
    """The layout (env.reset seed) of every episode when layouts="fixed"."""
    exclude_layout_seeds: tuple[int, ...] = ()
    """Layouts held out by content, e.g. those evaluated: no episode runs in a layout equal to one
    of these seeds' (walls, doors as at reset, objects; :func:`hjepa.envs.layouts.layout_key`).
    Random layouts that match are redrawn; a fixed layout that matches is an error."""
    action_subset: tuple[str, ...] = ("left", "right", "forward")
    """MiniGrid actions the walk uses (from left, right, forward, toggle); our index follows this order."""
    door_open_prob: float = 0.0
    """Probability that each unlocked door starts an episode open (MultiRoom's start closed):
    walks then see open doors and closed ones without first having to toggle them."""
    door_start_prob: float = 0.0
    """Probability that an episode starts on a free cell beside an unlocked door (random
    direction) instead of any free cell. Random walks seldom reach MultiRoom's doors (0.2% of
    their steps enter one), too seldom to learn toggling and passing them (docs/design-notes.md,
    MultiRoom); a layout without doors starts anywhere."""
    carry_prob: float = 0.0
    """Probability that an episode starts carrying one of the layout's keys (taken off its
    cell, as a pickup would). Random walks seldom pick a key up and then reach its locked door
    (DoorKey), too seldom to learn unlocking; a layout without keys is unaffected."""
    repeat_prob: float = 0.0
    """Momentum: probability of repeating the previous action instead of drawing a new one."""
    action_repeat: int = 1
    """PointMaze only: physics steps each force is held for; the dataset records every
    ``action_repeat``-th state, so one transition spans that many env steps."""
    obs_mode: str = "grid"
    """"grid": symbolic (W, H, 3) encoding; "image": (H*tile, W*tile, 3) RGB from the rasteriser;
    "state": PointMaze's (x, y, vx, vy)."""
    image_tile: int = 2
    """Pixels per cell side when obs_mode="image" (>= 2, so the agent's heading shows)."""
    seed: int = 0
    """Seed of the collector's generator: the same config gives byte-identical arrays."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude_layout_seeds", tuple(int(s) for s in self.exclude_layout_seeds))
        object.__setattr__(self, "action_subset", tuple(self.action_subset))
        checks = [
            (isinstance(self.env_id, str) and self.env_id != "", f"env_id must be a non-empty string, got {self.env_id!r}"),
            (self.transitions > 0, f"transitions must be > 0, got {self.transitions}"),
            (self.episode_len > 0, f"episode_len must be > 0, got {self.episode_len}"),
            (self.layouts in LAYOUT_MODES, f"layouts must be one of {LAYOUT_MODES}, got {self.layouts!r}"),
            (self.layout_seed >= 0, f"layout_seed must be >= 0, got {self.layout_seed}"),
            (all(s >= 0 for s in self.exclude_layout_seeds), "exclude_layout_seeds must be >= 0"),
            (0.0 <= self.repeat_prob < 1.0, f"repeat_prob must be in [0, 1), got {self.repeat_prob}"),
            (0.0 <= self.door_open_prob <= 1.0, f"door_open_prob must be in [0, 1], got {self.door_open_prob}"),
            (0.0 <= self.door_start_prob <= 1.0, f"door_start_prob must be in [0, 1], got {self.door_start_prob}"),
            (0.0 <= self.carry_prob <= 1.0, f"carry_prob must be in [0, 1], got {self.carry_prob}"),
            (self.action_repeat >= 1, f"action_repeat must be >= 1, got {self.action_repeat}"),
            (self.obs_mode in OBS_MODES, f"obs_mode must be one of {OBS_MODES}, got {self.obs_mode!r}"),
            (self.image_tile >= 2, f"image_tile must be >= 2, got {self.image_tile}"),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"Invalid CollectConfig: {message}.")
        if self.layouts == "fixed" and self.layout_seed in self.exclude_layout_seeds:
            raise ConfigError(
                f"Invalid CollectConfig: layouts='fixed' uses layout_seed {self.layout_seed}, "
                "which exclude_layout_seeds holds out."
            )
        if is_pointmaze(self.env_id):  # continuous forces: its own checks, action_subset unused
            from hjepa.data.collect_pointmaze import check_config

            check_config(self)
            return
        if self.obs_mode == "state":
            raise ConfigError("Invalid CollectConfig: obs_mode='state' is PointMaze's; MiniGrid has 'grid' or 'image'.")
        if self.action_repeat != 1:
            raise ConfigError("Invalid CollectConfig: action_repeat is PointMaze's; MiniGrid actions are single steps.")
        action_spec(self.action_subset)  # raises ConfigError on unknown names

    @property
    def num_episodes(self) -> int:
        """Episodes needed for `transitions` actions of at most `episode_len` each."""
        return -(-self.transitions // self.episode_len)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-ready dict (tuples as lists)."""
        d = asdict(self)
        d["exclude_layout_seeds"], d["action_subset"] = list(self.exclude_layout_seeds), list(self.action_subset)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CollectConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"Unknown CollectConfig keys {sorted(unknown)}.")
        return cls(**d)


def episode_lengths(transitions: int, episode_len: int) -> np.ndarray:
    """``(E,)`` int64 actions per episode: full episodes, then the remainder if any."""
    full, rest = divmod(int(transitions), int(episode_len))
    lengths = np.full(full, episode_len, dtype=np.int64)
    return np.append(lengths, rest) if rest else lengths


def layout_seeds(cfg: CollectConfig, num_episodes: int, rng: np.random.Generator) -> np.ndarray:
    """``(E,)`` int64 layout seed of each episode; random ones avoid `exclude_layout_seeds`."""
    if cfg.layouts == "fixed":
        return np.full(num_episodes, cfg.layout_seed, dtype=np.int64)
    seeds = rng.integers(0, _MAX_SEED, size=num_episodes, dtype=np.int64)
    excluded = np.asarray(cfg.exclude_layout_seeds, dtype=np.int64)
    bad = np.isin(seeds, excluded)
    while bad.any():  # held-out seeds are few, so this redraws rarely
        seeds[bad] = rng.integers(0, _MAX_SEED, size=int(bad.sum()), dtype=np.int64)
        bad = np.isin(seeds, excluded)
    return seeds


def random_actions(rng: np.random.Generator, length: int, n: int, repeat_prob: float) -> np.ndarray:
    """``(length,)`` int16 uniform actions in ``[0, n)``, each repeating the previous one w.p. `repeat_prob`."""
    fresh = rng.integers(0, n, size=length)
    if repeat_prob <= 0.0:
        return fresh.astype(np.int16)
    repeat = rng.random(length) < repeat_prob
    repeat[0] = False  # an episode starts with a fresh action
    # Each step reads the fresh draw of the last step that did not repeat.
    source = np.maximum.accumulate(np.where(repeat, 0, np.arange(length)))
    return fresh[source].astype(np.int16)


@contextmanager
def _progress_bar(enabled: bool, total: int, description: str) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``: a rich progress bar when enabled, else a no-op."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _obs_spec(cfg: CollectConfig, w: int, h: int) -> ObsSpec:
    if cfg.obs_mode == "grid":
        return ObsSpec(kind="grid", shape=(w, h, 3), dtype="uint8")
    return ObsSpec(kind="image", shape=(h * cfg.image_tile, w * cfg.image_tile, 3), dtype="uint8")


def beside_doors(nav: GridNav, free: np.ndarray) -> np.ndarray:
    """The cells of ``free`` (``(n, 2)``) 4-adjacent to a door of ``nav``, locked or not (all
    of ``free`` when none is)."""
    doors = nav.doors(locked=True)
    if len(doors) == 0:
        return free
    gaps = np.abs(free[:, None, :] - doors[None, :, :]).sum(-1)  # "n doors": Manhattan distance
    near = free[(gaps == 1).any(1)]
    return near if len(near) else free


def _walk(nav: GridNav, rng: np.random.Generator, length: int, cfg: CollectConfig, env_ids: np.ndarray,
          grid_buf: np.ndarray, img_buf: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One episode from a random free cell and direction: ``(obs, actions, poses)``, views of the buffers."""
    if cfg.door_open_prob > 0:
        for door_x, door_y in nav.doors():
            if rng.random() < cfg.door_open_prob:
                nav.toggle_at(int(door_x), int(door_y))
    keys = nav.keys() if cfg.carry_prob > 0 else ()
    if len(keys) and rng.random() < cfg.carry_prob:
        nav.pick_up_at(*(int(v) for v in keys[rng.integers(len(keys))]))
    free = nav.free_cells()
    if cfg.door_start_prob > 0 and rng.random() < cfg.door_start_prob:
        free = beside_doors(nav, free)
    x, y = free[rng.integers(len(free))]
    nav.set_pose(int(x), int(y), int(rng.integers(4)))
    actions = random_actions(rng, length, len(env_ids), cfg.repeat_prob)
    poses = nav.rollout(env_ids[actions].tolist(), out=grid_buf)
    obs = grid_buf[: length + 1]
    if img_buf is not None:
        obs = grid_to_rgb(obs, cfg.image_tile, out=img_buf[: length + 1])
    return obs, actions, poses


def held_out_layouts(cfg: CollectConfig, cache: LayoutCache) -> frozenset[bytes]:
    """Content keys of the layouts of `cfg.exclude_layout_seeds`, doors as at reset.

    Raises:
        ConfigError: layouts="fixed" and the fixed layout equals a held-out one by content.
    """
    held = layout_keys(cache.get(s).encoding for s in cfg.exclude_layout_seeds)
    if cfg.layouts == "fixed" and layout_key(cache.get(cfg.layout_seed).encoding) in held:
        raise ConfigError(
            f"Invalid CollectConfig: the fixed layout {cfg.layout_seed} of '{cfg.env_id}' has the same walls, "
            "doors and objects as a layout of exclude_layout_seeds, so collecting it would train on a "
            "held-out layout. Pick another layout_seed or hold out other layouts."
        )
    return held


def draw_layout(cache: LayoutCache, seed: int, held: frozenset[bytes], rng: np.random.Generator) -> tuple[int, int]:
    """The layout seed an episode runs in: ``seed``, or new draws from ``rng`` while its layout
    equals a held-out one by content. Returns ``(seed, redraws)``.

    Raises:
        ConfigError: :data:`_MAX_REDRAWS` draws in a row were all held out.
    """
    for redraws in range(_MAX_REDRAWS):
        if layout_key(cache.get(seed).encoding) not in held:
            return seed, redraws
        seed = int(rng.integers(0, _MAX_SEED))
    raise ConfigError(
        f"Cannot hold out layouts of '{cache.env_id}' by content: {_MAX_REDRAWS} layouts drawn in a row all "
        f"equal one of the {len(held)} held-out layouts (exclude_layout_seeds). Its resets give too few "
        "distinct layouts to hold these out; collect with fewer exclude_layout_seeds, or with none and "
        "evaluate on the training layouts."
    )


def collect(cfg: CollectConfig, out: str | os.PathLike[str], progress: bool = True) -> DatasetMeta:
    """Collect a reward-free random-walk dataset into the folder ``out``.

    Every episode starts at a uniformly random free cell and direction of its layout (the
    goal square removed; beside a door with probability `cfg.door_start_prob`), each unlocked
    door open with probability `cfg.door_open_prob`, carrying a key with probability
    `cfg.carry_prob`, and takes uniformly random actions from
    `cfg.action_subset`, with momentum `cfg.repeat_prob`. No episode runs in a layout equal by
    content to one of `cfg.exclude_layout_seeds` (:func:`draw_layout`); the metadata's
    ``held_out`` counts the redrawn ones. The folder appears only when complete.

    Args:
        cfg: what to collect.
        out: the dataset folder to create (an existing one is replaced).
        progress: show a rich progress bar.

    Returns:
        The dataset's metadata (also in ``out/meta.json``).

    Raises:
        NotNavigationEnvError: the env is not a static goal-reaching grid world
            (:func:`~hjepa.envs.minigrid_checks.check_goal_reaching`).
        ConfigError: the held-out layouts cannot be held out (:func:`held_out_layouts`,
            :func:`draw_layout`).
    """
    if is_pointmaze(cfg.env_id):  # continuous navigation has its own collector
        from hjepa.data.collect_pointmaze import collect_pointmaze

        return collect_pointmaze(cfg, out, progress)
    check_goal_reaching(cfg.env_id, cfg.layout_seed)
    spec = action_spec(cfg.action_subset)
    env_ids = np.asarray(spec.env_actions, dtype=np.int64)
    layout_ss, walk_ss = np.random.SeedSequence(cfg.seed).spawn(2)  # layouts independent of walk settings
    layout_rng, walk_rng = np.random.default_rng(layout_ss), np.random.default_rng(walk_ss)
    lengths = episode_lengths(cfg.transitions, cfg.episode_len)
    seeds = layout_seeds(cfg, len(lengths), layout_rng)
    cache = LayoutCache(cfg.env_id, remove_goal=True)
    held = held_out_layouts(cfg, cache)
    w, h = cache.get(int(seeds[0])).encoding.shape[:2]
    obs_spec = _obs_spec(cfg, w, h)
    # Buffers reused by every episode: no allocation per step or per episode.
    grid_buf = np.empty((cfg.episode_len + 1, w, h, 3), dtype=np.uint8)
    img_buf = np.empty((cfg.episode_len + 1, *obs_spec.shape), np.uint8) if cfg.obs_mode == "image" else None
    writer = DatasetWriter(
        out, env_id=cfg.env_id, obs_spec=obs_spec, action_spec=spec, num_steps=int(lengths.sum() + len(lengths)),
        num_episodes=len(lengths), seed=cfg.seed, layouts=cfg.layouts, collector=cfg.to_dict(),
    )
    skipped = 0
    with writer, _progress_bar(progress, cfg.transitions, f"collect {cfg.env_id}") as advance:
        for length, drawn in zip(lengths.tolist(), seeds.tolist()):
            seed, redraws = draw_layout(cache, drawn, held, layout_rng)
            skipped += redraws
            obs, actions, poses = _walk(cache.get(seed), walk_rng, length, cfg, env_ids, grid_buf, img_buf)
            writer.append_episode(obs, actions, seed, poses)
            advance(length)
        writer.meta = replace(writer.meta, held_out={"layouts": len(held), "skipped": skipped})
    return writer.meta
