"""Experiment presets: functions returning a complete :class:`ExperimentConfig`.

``debug()`` makes every width tiny (the tests use it); the others are the benchmark suites of
docs/benchmark.md. ``quick=True`` is the small version that
finishes in a few minutes on a laptop CPU.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from hjepa.config import CriticConfig, ExperimentConfig, LevelConfig, LossConfig, TrainConfig
from hjepa.data.collect import CollectConfig
from hjepa.errors import ConfigError, UnknownNameError, did_you_mean
from hjepa.registry import get_level_kind


def three_levels(kind0: str = "grid", dim: int = 64, strides: tuple[int, int] = (4, 4)) -> tuple[LevelConfig, ...]:
    """Level 0 of ``kind0`` and two temporal levels (tau = 1, s1, s1 * s2)."""
    return (
        LevelConfig(kind=kind0, dim=dim),
        LevelConfig(kind="temporal", dim=dim, stride=strides[0], action_dim=8, hidden=128),
        LevelConfig(kind="temporal", dim=dim, stride=strides[1], action_dim=8, hidden=128),
    )


def map_level(crop: int = 7, **args: object) -> tuple[LevelConfig, ...]:
    """One ``gridmap`` level 0: a spatial state whose one-step predictions the "graph" planner
    chains over any distance (docs/planning.md; why one level: docs/design-notes.md, 2026-11-21),
    trained on ``crop x crop`` crops around the agent (a seventh to a twentieth of the
    convolutions of whole maps; docs/design-notes.md, 2026-11-22)."""
    return (LevelConfig(kind="gridmap", dim=64, args={"crop": crop, **args}),)


MAP_TRAIN = dict(steps=3000, batch_size=256, lr=1e-3)
"""The fixed-layout suites' recipe, quick and full (docs/design-notes.md, 2026-11-22): on 7 x 7 crops
it reached 1.00 success on mazerooms with seeds 0 and 1 (seed 2: 0.61), and predicted all but 3
of seed 1's moves onto the right node, where 11 x 11 crops of 128 windows missed 78."""


MAP_LOSS = LossConfig(hard_focus=1.0)
"""The fixed-layout suites' loss: one-step prediction pairs weigh their error relative to the
mean. Doorway exits are rare in random walks, and a plain mean left some predicted half-blocked
(mazerooms seed 2: 12 real moves snapped onto their own node, 0.61 success); with the focus none
did and it scored 1.00, and SPL rose on every fourrooms seed. Mazerooms seed 0 fell from 1.00 to
0.72 with it: two doorway entries predicted one cell off (docs/design-notes.md, "loss.hard_focus")."""


MAP_CRITIC = CriticConfig(enabled=False)
"""The fixed-layout suites plan on the latent graph, whose cost-to-go is its path length: the
critics only serve the beam fallback and take ~0.3 s a step on map states, so they are off
(``--set critic.enabled=true`` trains them)."""


HELD_OUT_LAYOUTS = tuple(range(100_000, 100_020))
"""fourrooms-random's evaluation layouts, held out of the training data by content."""


def _fourrooms_many_layouts(name: str, quick: bool, seed: int, exclude: tuple[int, ...]) -> ExperimentConfig:
    """FourRooms data over random door layouts (none of ``exclude``), one ``gridmap`` level 0.

    400k transitions even when quick (2 s to collect): trained on 80k (800 layouts) the
    predictor was not crisp enough to imagine an unseen layout (0.40 success), on 400k it was
    (1.00; docs/design-notes.md, 2026-12-03)."""
    data = CollectConfig(env_id="MiniGrid-FourRooms-v0", transitions=400_000, episode_len=100, layouts="random",
                         layout_seed=seed, exclude_layout_seeds=exclude, seed=seed)  # fmt: skip
    train = TrainConfig(**MAP_TRAIN, epoch_steps=200 if quick else 500)
    return ExperimentConfig(name=name, seed=seed, data=data, levels=map_level(), loss=MAP_LOSS, train=train,
                            critic=MAP_CRITIC)  # fmt: skip


def fourrooms(quick: bool = False, seed: int = 0) -> ExperimentConfig:
    """MiniGrid FourRooms, evaluated on one fixed door layout (the seed's), random starts. The
    data come from the env family's other layouts (none equal to the evaluated one): a
    ``gridmap`` level 0 trained on many layouts imagines the evaluated one's graph (the
    suite's configurator, planner "imagine"), at long-bin SPL 0.98 where one trained on the
    layout itself and planned on its memory's graph reached 0.80 (docs/design-notes.md, 2026-12-03).
    Quick and full train alike; the full run evaluates on 50 tasks per bin."""
    return _fourrooms_many_layouts("fourrooms", quick, seed, (seed,) + HELD_OUT_LAYOUTS)


def fourrooms_random(quick: bool = False, seed: int = 0) -> ExperimentConfig:
    """FourRooms with a new door layout every episode; the bench's held-out layouts
    (100000-100019) are held out by content. A ``gridmap`` level 0; the suite plans by imagining
    each unseen layout's graph from the current observation (planner "imagine",
    :mod:`hjepa.planning.imagine`): a memory of training layouts holds no state of an unseen one."""
    return _fourrooms_many_layouts("fourrooms-random", quick, seed, HELD_OUT_LAYOUTS)


def mazerooms(quick: bool = False, seed: int = 0) -> ExperimentConfig:
    """hjepa's MazeRooms (4x4 rooms, ~33x33 cells, doorways on a spanning tree), evaluated on one
    fixed layout (the seed's) and trained on 400k transitions of the family's other layouts; a
    ``gridmap`` level 0 that imagines the evaluated layout's graph (the suite's planner
    "imagine"). Trained on its own layout and planned on its memory's graph it reached the same
    success at SPL 0.77, against 0.99 (docs/design-notes.md, 2026-12-03)."""
    data = CollectConfig(env_id="hjepa/MazeRooms-v0", transitions=400_000, episode_len=200, layouts="random",
                         layout_seed=seed, exclude_layout_seeds=(seed,), seed=seed)  # fmt: skip
    train = TrainConfig(**MAP_TRAIN, epoch_steps=200 if quick else 500)
    return ExperimentConfig(name="mazerooms", seed=seed, data=data, levels=map_level(), loss=MAP_LOSS, train=train,
                            critic=MAP_CRITIC)  # fmt: skip


BLOCK = 4
"""Cells per block side of the ``gridcoarse`` level of the large MazeRooms suites."""


COARSE_MARGIN = 12.0
"""``args.code_margin`` of the large MazeRooms suites' level 0. Without it, floor and wall cells
embedded 4.6 apart (the agent's codes 10-40), the cell a forward move leaves was predicted
between them, and on held-out 65 x 65 layouts 0.53 of forward moves snapped right (0.96 with
level 0 trained alone); with it, all 720 sampled moves did (docs/design-notes.md, 2026-12-06)."""


def coarse_levels(block: int = BLOCK, stride: int = 4) -> tuple[LevelConfig, ...]:
    """A ``gridmap`` level 0 trained on ``3 block x 3 block`` crops aligned to the blocks, its
    cell codes kept apart (:data:`COARSE_MARGIN`), and a ``gridcoarse`` level 1 over it: blocks
    of ``block x block`` cells, one step every ``stride`` env steps, latent macro-actions of 8
    dims inferred from the chunk of level-0 actions, a predictor of 4 dilated convolutions of 32
    channels on the blocks' cells."""
    level0 = LevelConfig(kind="gridmap", dim=64, args={"crop": 3 * block, "align": block,
                                                       "code_margin": COARSE_MARGIN})  # fmt: skip
    level1 = LevelConfig(kind="gridcoarse", dim=64, stride=stride, action_dim=8, hidden=32,
                         args={"block": block, "depth": 4})  # fmt: skip
    return level0, level1


COARSE_LOSS = dataclasses.replace(MAP_LOSS, upward=0.0)
"""The large MazeRooms suites' loss: no upward term. Level 1's state is level 0's cells side by
side (no parameters), so the term could only train level 0, as a second rollout loss. With it,
level 0 trained jointly with level 1 snapped 0.53 of held-out forward moves right, against 0.91
trained alone on the same data and steps (docs/design-notes.md, 2026-12-06)."""


def _mazerooms_sized(rooms: int, quick: bool, seed: int, transitions: int) -> ExperimentConfig:
    """MazeRooms of ``rooms x rooms`` rooms, trained on the family's other layouts (the suite's
    held-out ones are never collected), two levels (:func:`coarse_levels`) trained in one
    optimisation step, no gradient crossing between them (:data:`COARSE_LOSS`)."""
    from hjepa.envs.mazerooms import SIZED_IDS

    data = CollectConfig(env_id=SIZED_IDS[rooms], transitions=transitions, episode_len=200, layouts="random",
                         layout_seed=seed, exclude_layout_seeds=HELD_OUT_LAYOUTS, repeat_prob=0.5, seed=seed)  # fmt: skip
    train = TrainConfig(**{**MAP_TRAIN, "steps": 3000}, epoch_steps=250 if quick else 500)
    return ExperimentConfig(name=f"mazerooms-{rooms}", seed=seed, data=data, levels=coarse_levels(), loss=COARSE_LOSS,
                            train=train, critic=MAP_CRITIC)  # fmt: skip


def mazerooms_8(quick: bool = False, seed: int = 0) -> ExperimentConfig:
    """MazeRooms with 8 x 8 rooms (65 x 65 cells, paths up to ~400 actions), two levels: level 0
    imagines locally, level 1 imagines the route of 4 x 4 blocks (:mod:`hjepa.planning.coarse`)."""
    return _mazerooms_sized(8, quick, seed, 100_000 if quick else 300_000)


def mazerooms_16(quick: bool = False, seed: int = 0) -> ExperimentConfig:
    """MazeRooms with 16 x 16 rooms (129 x 129 cells, paths up to ~1,000 actions), two levels."""
    return _mazerooms_sized(16, quick, seed, 50_000 if quick else 150_000)


MULTIROOM_ACTIONS = ("left", "right", "forward", "toggle")


def multiroom(quick: bool = False, seed: int = 0) -> ExperimentConfig:
    """MiniGrid MultiRoom-N6 (six rooms in a chain, closed doors that must be toggled open),
    evaluated on held-out layouts (:data:`HELD_OUT_LAYOUTS`, held out by content). 400k random-walk
    transitions over the family's other layouts with toggle among the actions, in walks of 25
    steps, three in four starting beside a door, each door open with probability 0.5 (so walks
    see both states); one ``gridmap`` level 0 that imagines the evaluated layout's graph, door
    states included (planner "imagine"), its cells embedded without colours (``args.colors``: a
    door's colour hides under the agent) and kept apart by ``args.code_margin``.

    What each choice bought, one-step snapped predictions on held-out layouts (docs/design-notes.md,
    MultiRoom): without the margin, walls and closed doors embedded 0.41 apart and far walls
    snapped onto doors; with walks from anywhere, entering and leaving doors stayed wrong (0.2%
    of random-walk steps enter one); at 3000 steps half the door entries were still wrong, at
    6000 none were. Crops of 5 x 5 (the agent's cell, the cell ahead and the one beyond stay
    inside) predicted as well as 7 x 7 ones and trained 1.24x faster; at 4500 steps they were not
    crisp enough (8 of 15 tasks imagined to their goal)."""
    data = CollectConfig(env_id="MiniGrid-MultiRoom-N6-v0", transitions=400_000, episode_len=25, layouts="random",
                         layout_seed=seed, exclude_layout_seeds=HELD_OUT_LAYOUTS, action_subset=MULTIROOM_ACTIONS,
                         door_open_prob=0.5, door_start_prob=0.75, seed=seed)  # fmt: skip
    train = TrainConfig(**{**MAP_TRAIN, "steps": 6000}, epoch_steps=500)  # quick trains alike
    levels = map_level(crop=5, colors=False, code_margin=3.0)
    return ExperimentConfig(name="multiroom", seed=seed, data=data, levels=levels, loss=MAP_LOSS, train=train,
                            critic=MAP_CRITIC)  # fmt: skip


def pointmaze(env_id: str, name: str, quick: bool = False, seed: int = 0, transitions: int = 400_000,
              steps: int = 6000) -> ExperimentConfig:
    """A PointMaze (``pip install "hjepa[nav]"``): state observations (x, y, vx, vy), random
    forces with momentum, each held for :data:`NAV_REPEAT` physics steps; 3 levels with strides
    5 and 4 (tau = 1, 5, 20 model steps = 5, 25, 100 env steps), the levels above 0 trained
    toward slow features (:data:`NAV_LOSS`). Images instead: ``--set data.obs_mode=image --set
    levels.0.kind=image`` (``data.image_tile`` pixels per cell)."""
    data = CollectConfig(env_id=env_id, transitions=transitions // 4 if quick else transitions, episode_len=200,
                         layouts="fixed", layout_seed=0, obs_mode="state", image_tile=8, repeat_prob=0.6,
                         action_repeat=NAV_REPEAT, seed=seed)  # fmt: skip
    levels = three_levels(kind0="state", dim=32, strides=(5, 4))
    # level 0 at width 256: at 128, Large-quick reached 0.60 where 256 reaches 0.87 (docs/design-notes.md)
    levels = (dataclasses.replace(levels[0], hidden=256),) + levels[1:]
    train = TrainConfig(steps=steps // 4 if quick else steps, batch_size=64 if quick else 128,
                        epoch_steps=250 if quick else 500)  # fmt: skip
    # The recipe the PointMaze figures of docs/results.md were measured with (the MLP critic of
    # before the quasimetric default); kept until PointMaze is measured with the new one.
    critic = CriticConfig(steps=1500 if quick else 4000, gammas=(0.97, 0.9), kind="mlp", lr=3e-4, polyak=0.005)
    return ExperimentConfig(name=name, seed=seed, data=data, levels=levels, loss=NAV_LOSS, train=train, critic=critic)


NAV_REPEAT = 5
"""PointMaze's action repeat: the model acts every 5 physics steps (0.05 s), with momentum 0.6
per model step (a force lasts 12.5 physics steps on average; 0.9 per physics step, before,
gave 10). Against acting every step: equal or better success at a fifth of the planning time
(docs/design-notes.md, 2026-11-22); with momentum 0.9 per model step the ball flew into walls at
top speed and level 0 learned no better than copying its input."""

NAV_LOSS = LossConfig(smooth=1.0, smooth_from=1)
"""PointMaze's loss: the levels above 0 are pulled toward slow features (where the ball is, not
how fast it goes), so that their latent graphs, which the suites' "field" configurator plans
on, snap onto nodes at the right place (docs/design-notes.md, 2026-11-22)."""


def pointmaze_medium(quick: bool = False, seed: int = 0) -> ExperimentConfig:
    """gymnasium-robotics PointMaze_Medium-v3 (8 x 8 cells)."""
    return pointmaze("PointMaze_Medium-v3", "pointmaze-medium", quick, seed)


def pointmaze_large(quick: bool = False, seed: int = 0) -> ExperimentConfig:
    """gymnasium-robotics PointMaze_Large-v3 (9 x 12 cells)."""
    return pointmaze("PointMaze_Large-v3", "pointmaze-large", quick, seed, transitions=600_000)


def pointmaze_giant(quick: bool = False, seed: int = 0) -> ExperimentConfig:
    """OGBench's giant maze (12 x 16 cells) on gymnasium-robotics' PointMaze (hjepa/PointMaze_Giant-v0)."""
    return pointmaze("hjepa/PointMaze_Giant-v0", "pointmaze-giant", quick, seed, transitions=1_000_000, steps=8000)


def debug(quick: bool = True, seed: int = 0) -> ExperimentConfig:
    """Tiny everything: a 3-level stack (strides 2, 2) on MiniGrid Empty-8x8, seconds to run."""
    data = CollectConfig(env_id="MiniGrid-Empty-8x8-v0", transitions=3000, episode_len=50, layouts="fixed",
                         layout_seed=seed, seed=seed)  # fmt: skip
    levels = (
        LevelConfig(kind="grid", dim=16, hidden=32, args={"channels": 8}),
        LevelConfig(kind="temporal", dim=16, stride=2, action_dim=4, hidden=32),
        LevelConfig(kind="temporal", dim=16, stride=2, action_dim=4, hidden=32),
    )
    train = TrainConfig(steps=40, batch_size=16, epoch_steps=20, warmup_steps=5, log_every=5, val_batches=1)
    critic = CriticConfig(steps=60, batch_size=64, hidden=32, depth=2)
    return ExperimentConfig(name="debug", seed=seed, data=data, levels=levels, train=train, critic=critic)


EXPERIMENTS: dict[str, Callable[..., ExperimentConfig]] = {
    "fourrooms": fourrooms,
    "fourrooms-random": fourrooms_random,
    "mazerooms": mazerooms,
    "mazerooms-8": mazerooms_8,
    "mazerooms-16": mazerooms_16,
    "multiroom": multiroom,
    "pointmaze-medium": pointmaze_medium,
    "pointmaze-large": pointmaze_large,
    "pointmaze-giant": pointmaze_giant,
    "debug": debug,
}


def get_experiment(name: str, quick: bool = False, seed: int = 0) -> ExperimentConfig:
    """The preset ``name``; :class:`UnknownNameError` listing the experiments otherwise."""
    if name not in EXPERIMENTS:
        raise UnknownNameError(f"Unknown experiment '{name}'. Experiments: {', '.join(EXPERIMENTS)}."
                               f"{did_you_mean(name, EXPERIMENTS)}")  # fmt: skip
    return EXPERIMENTS[name](quick=quick, seed=seed)


def config_for_dataset(env_id: str, obs_kind: str, collector: dict, seed: int = 0) -> ExperimentConfig:
    """The config ``hjepa train`` uses when none is given: the env's preset (or fourrooms'
    architecture), level 0 matched to the observation kind (the preset's own kind when it
    reads that kind), the dataset's collector settings."""
    by_env = {"MiniGrid-FourRooms-v0": fourrooms, "hjepa/MazeRooms-v0": mazerooms,
              "MiniGrid-MultiRoom-N6-v0": multiroom, "PointMaze_Medium-v3": pointmaze_medium,
              "PointMaze_Large-v3": pointmaze_large,
              "hjepa/PointMaze_Giant-v0": pointmaze_giant, "PointMaze_UMaze-v3": pointmaze_medium}  # fmt: skip
    base = by_env.get(env_id, fourrooms)(quick=False, seed=seed)
    kind = base.levels[0].kind if obs_kind in get_level_kind(base.levels[0].kind).accepts else obs_kind
    levels = (dataclasses.replace(base.levels[0], kind=kind),) + base.levels[1:]
    known = {f.name for f in dataclasses.fields(CollectConfig)}
    data = CollectConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in collector.items() if k in known})
    return dataclasses.replace(base, name=env_id, data=data, levels=levels)


def with_levels(cfg: ExperimentConfig, k: int) -> ExperimentConfig:
    """Keep the first ``k`` levels, or add temporal levels (stride 4) up to ``k``. Above a
    level 0 that trains on crops (``gridmap``'s ``args.crop``), level 0 trains on whole maps:
    the levels above read its whole states."""
    if k < 1:
        raise ConfigError(f"--levels must be >= 1, got {k}.")
    levels = list(cfg.levels[:k])
    if k > 1 and levels[0].args.get("crop"):
        levels[0] = dataclasses.replace(levels[0], args={**levels[0].args, "crop": 0})
    while len(levels) < k:
        levels.append(LevelConfig(kind="temporal", dim=levels[-1].dim, stride=4))
    return dataclasses.replace(cfg, levels=tuple(levels))
