"""Suites derived from the env itself: any goal-reaching MiniGrid env, with no suite written for it.

``hjepa bench --env ENV_ID`` and ``hjepa evaluate --env ENV_ID`` (an env no named suite
evaluates) read everything from the env (:func:`profile_env`, over the resets of 64 seeds):

- **actions**: left, right and forward; pickup where a layout holds a key; toggle where it holds a door;
- **step limit**: the env's own ``max_steps``;
- **layouts**: an env whose resets give many layouts (:data:`MANY_LAYOUTS` of 64) is evaluated
  on the 20 layouts of seeds 100000-100019, held out of the training data by content; one
  whose resets all give one layout (``MiniGrid-Empty-*``) is trained and evaluated on it; one
  with few layouts is trained on all of them and evaluated on those seeds (``notes`` says so);
- **collection**: walks of 25 actions starting beside a door three times in four, doors open
  half the time and a key carried half the time where there are doors or keys (the
  ``multiroom`` recipe); else walks of ``min(max_steps, 100)`` from anywhere;
- **tasks**: the goal is the env's own ``Goal`` square; starts are the env's own reset pose
  (one draw in five) or a uniform free cell and heading, kept by oracle distance into three
  bins cut at the tertiles of the distances from every pose of the evaluated layouts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX

from hjepa.config import ExperimentConfig, TrainConfig
from hjepa.data.collect import CollectConfig
from hjepa.envs.layouts import layout_key
from hjepa.envs.minigrid_checks import check_goal_reaching
from hjepa.envs.minigrid_nav import ACTIONS, GridNav, make_minigrid
from hjepa.envs.oracle import LayoutOracle
from hjepa.envs.tasks import DistanceBins, Task, bin_of
from hjepa.errors import ConfigError, InvalidGoalError, SpecMismatchError
from hjepa.experiments import presets
from hjepa.experiments.bench import Suite
from hjepa.planning.configurator import RuleConfigurator

PROBE = 64
"""Resets (seeds 0-63) :func:`profile_env` reads."""
MANY_LAYOUTS = 32
"""Distinct layouts among the probed resets from which an env's evaluated layouts are held out."""
OWN_START = 0.2
"""Share of task draws that start at the env's own reset pose."""
_DOOR, _KEY, _LAVA = OBJECT_TO_IDX["door"], OBJECT_TO_IDX["key"], OBJECT_TO_IDX["lava"]


@dataclass(frozen=True)
class EnvProfile:
    """What an env's resets show, and the settings derived from them.

    Attributes:
        env_id: the gymnasium id.
        actions: the action names the layouts need (:data:`~hjepa.envs.minigrid_nav.ACTIONS`).
        max_steps: the env's step limit.
        layouts: distinct layouts (:func:`~hjepa.envs.layouts.layout_key`) among ``probed`` resets.
        probed: resets read.
        doors: some layout holds a door; ``keys``: a key; ``lava``: lava.
    """

    env_id: str
    actions: tuple[str, ...]
    max_steps: int
    layouts: int
    probed: int
    doors: bool
    keys: bool
    lava: bool

    @property
    def interacts(self) -> bool:
        """Whether reaching the goal may need a toggle or a pickup."""
        return self.doors or self.keys


@functools.lru_cache(maxsize=16)
def profile_env(env_id: str) -> EnvProfile:
    """Read ``env_id``'s resets (after :func:`check_goal_reaching`, which names what is wrong).

    Raises:
        UnknownEnvError, NotNavigationEnvError: as :func:`check_goal_reaching`.
    """
    check_goal_reaching(env_id)
    env = make_minigrid(env_id)
    try:
        keys, found = set(), np.zeros(3, dtype=bool)
        for seed in range(PROBE):
            env.reset(seed=seed)
            enc = GridNav.from_env(env).encoding
            keys.add(layout_key(enc))
            found |= [(enc[..., 0] == kind).any() for kind in (_DOOR, _KEY, _LAVA)]
        max_steps = int(env.max_steps)
    finally:
        env.close()
    doors, has_keys, lava = (bool(v) for v in found)
    actions = tuple(a for a in ACTIONS if a in ("left", "right", "forward") or (a == "toggle" and doors)
                    or (a == "pickup" and has_keys))  # fmt: skip
    return EnvProfile(env_id, actions, max_steps, len(keys), PROBE, doors, has_keys, lava)


def layout_plan(profile: EnvProfile, seed: int) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """``(collection layouts, held-out seeds, evaluated seeds)`` of ``profile``'s env (module docstring)."""
    if profile.layouts == 1:
        return "fixed", (), (seed,)
    if profile.layouts >= MANY_LAYOUTS:
        return "random", presets.HELD_OUT_LAYOUTS, presets.HELD_OUT_LAYOUTS
    return "random", (), presets.HELD_OUT_LAYOUTS


def generic_experiment(env_id: str, quick: bool = False, seed: int = 0) -> ExperimentConfig:
    """The preset of an env with no suite: one ``gridmap`` level 0 that imagines the evaluated
    layout's graph (trained on 5 x 5 crops without colours, codes kept apart, where the agent
    toggles or picks up: the ``multiroom`` recipe), 400k transitions and 6000 steps (quick:
    100k and 1500)."""
    p = profile_env(env_id)
    mode, held_out, _ = layout_plan(p, seed)
    act = p.interacts
    data = CollectConfig(env_id=env_id, transitions=100_000 if quick else 400_000,
                         episode_len=25 if act else min(p.max_steps, 100), layouts=mode, layout_seed=seed,
                         exclude_layout_seeds=held_out, action_subset=p.actions,
                         door_open_prob=0.5 if p.doors else 0.0, door_start_prob=0.75 if act else 0.0,
                         carry_prob=0.5 if p.keys else 0.0, seed=seed)  # fmt: skip
    levels = presets.map_level(crop=5, colors=False, code_margin=3.0) if act else presets.map_level()
    train = TrainConfig(**{**presets.MAP_TRAIN, "steps": 1500 if quick else 6000}, epoch_steps=500)
    return ExperimentConfig(name=env_id, seed=seed, data=data, levels=levels, loss=presets.MAP_LOSS, train=train,
                            critic=presets.MAP_CRITIC)  # fmt: skip


def generic_suite(env_id: str, cfg: ExperimentConfig | None = None) -> Suite:
    """The suite of ``env_id`` derived from the env; with a trained model's ``cfg``, its
    evaluated layouts are those the model's data held out (else its fixed layout, else seeds
    100000-100019) and its actions the model's.

    Raises:
        SpecMismatchError: the model's actions lack one the env's layouts need.
    """
    p = profile_env(env_id)
    mode, held_out, evaluated = layout_plan(p, 0)
    names = p.actions
    if cfg is not None:
        names, data = tuple(cfg.data.action_subset), cfg.data
        mode, held_out = data.layouts, data.exclude_layout_seeds
        evaluated = held_out or ((data.layout_seed,) if mode == "fixed" else presets.HELD_OUT_LAYOUTS)
        missing = [a for a in p.actions if a not in names]
        if missing:
            raise SpecMismatchError(f"'{env_id}' needs the actions {list(p.actions)}, but the model was trained with "
                                    f"{list(names)} (no {', '.join(missing)}). Collect and train with them.")  # fmt: skip
    env_actions = tuple(ACTIONS[a] for a in names)
    bins = distance_bins(LayoutOracle(env_id, env_actions=env_actions), evaluated)
    notes = "" if held_out or mode == "fixed" else (
        f"{env_id} has few layouts ({p.layouts} of {p.probed} resets): its evaluated layouts occur in the training data.")
    return Suite(env_id, functools.partial(generic_experiment, env_id), bins, 30, 5, p.max_steps,
                 () if mode == "fixed" else tuple(evaluated), configurator=RuleConfigurator(planner="imagine"),
                 draw=goal_tasks, notes=notes)  # fmt: skip


def distance_bins(oracle: LayoutOracle, layouts: Sequence[int]) -> DistanceBins:
    """Bins ``short``, ``medium``, ``long`` cut at the tertiles of the oracle distances from
    every pose of ``layouts`` to their goal (fewer bins where the distances are too few)."""
    dist = []
    for seed in layouts:
        goal = _goal_of(oracle, seed)
        dist += [d for pose, d in oracle.graph(seed).distances_to(goal).items() if len(pose) == 3 and d > 0]
    if not dist:
        raise ConfigError(f"No free cell of '{oracle.env_id}' (layouts {list(layouts)[:4]}) reaches its goal.")
    q1, q2 = (int(q) for q in np.quantile(dist, [1 / 3, 2 / 3]))
    top = max(dist)
    if q1 < q2 < top:
        return DistanceBins.from_mapping({"short": (1, q1), "medium": (q1 + 1, q2), "long": (q2 + 1, np.inf)})
    return DistanceBins.from_mapping({"short": (1, q1), "long": (q1 + 1, np.inf)} if q1 < top else {"all": (1, np.inf)})


def _goal_of(oracle: LayoutOracle, seed: int) -> tuple[int, int]:
    goal = oracle.nav(seed).goal
    if goal is None:
        raise InvalidGoalError(f"Layout {seed} of '{oracle.env_id}' holds no Goal square.")
    if not oracle.graph(seed).has_cell(goal):
        raise InvalidGoalError(f"The Goal square {goal} of layout {seed} of '{oracle.env_id}' cannot be reached: "
                               "it lies in lava, in a wall, or where no action of the agent leads.")  # fmt: skip
    return goal


def goal_tasks(env_id: str, layout_seeds: Sequence[int], per_bin: int, bins: DistanceBins, seed: int,
               env_actions: Sequence[int]) -> list[Task]:  # fmt: skip
    """``per_bin`` tasks per bin toward each layout's own Goal square, from the env's own
    start (a fifth of the draws) or uniform free cells and headings; deterministic in ``seed``.

    Raises:
        ConfigError: a bin still short after ``max(5000, 200 * per_bin * len(bins))`` draws.
    """
    oracle, rng = LayoutOracle(env_id, env_actions=env_actions), np.random.default_rng(seed)
    found: dict[str, list[Task]] = {name: [] for name in bins}
    seen, limit = set(), max(5000, 200 * per_bin * len(bins))
    for _ in range(limit):
        layout = int(layout_seeds[int(rng.integers(len(layout_seeds)))])
        task = _draw(oracle, layout, rng, bins)
        if task is None or len(found[task.bin]) >= per_bin or (layout, task.start) in seen:
            continue
        seen.add((layout, task.start))
        found[task.bin].append(task)
        if all(len(t) >= per_bin for t in found.values()):
            return [t for name in bins for t in found[name]]
    short = ", ".join(f"'{n}': {len(t)}/{per_bin}" for n, t in found.items() if len(t) < per_bin)
    raise ConfigError(f"Could not fill distance bin(s) {short} of '{env_id}' after {limit} draws; "
                      "use fewer tasks per bin (--episodes).")  # fmt: skip


def _draw(oracle: LayoutOracle, layout: int, rng: np.random.Generator, bins: DistanceBins) -> Task | None:
    """One start toward layout ``layout``'s goal, as a task of its bin (None: off every bin or unreachable)."""
    goal, nav, graph = _goal_of(oracle, layout), oracle.nav(layout), oracle.graph(layout)
    if rng.random() < OWN_START:
        start = tuple(int(v) for v in nav.start_pose)
    else:
        cell = graph.cells[int(rng.integers(len(graph.cells)))]
        start = (int(cell[0]), int(cell[1]), int(rng.integers(4)))
    try:
        distance = graph.distance(start, goal)
    except InvalidGoalError:
        return None
    name = bin_of(distance, bins)
    return None if name is None or distance == 0 else Task(layout, start, goal, distance, name)
