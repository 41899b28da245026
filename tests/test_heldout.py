"""Held-out layouts are held out by content (hjepa.envs.layouts, the collector's redraws), and
collection refuses MiniGrid envs that are not static goal-reaching grid worlds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from minigrid.core.world_object import Wall
from rich.console import Console

from hjepa.data.collect import CollectConfig, collect
from hjepa.data.storage import OfflineDataset
from hjepa.envs import LayoutCache, layout_nav, make_minigrid
from hjepa.envs.layouts import layout_key, layout_keys
from hjepa.envs.minigrid_checks import check_goal_reaching
from hjepa.errors import ConfigError, NotNavigationEnvError
from hjepa.experiments.bench import SUITES
from hjepa.experiments.runner import ensure_data

CROSSING = "MiniGrid-SimpleCrossingS9N1-v0"  # ~40 distinct layouts: held-out ones recur under other seeds
PIXELS = "hjepa-test/PixelEmpty-v0"  # registered by conftest.py: observes pixels


def _episode_keys(ds: OfflineDataset) -> list[bytes]:
    """The layout key of each episode's first observation (its agent cell reads as empty)."""
    return [layout_key(ds.obs[s]) for s in ds.episode_starts[:-1]]


# ----------------------------------------------------------------------------- the key
def test_layout_key_ignores_the_agent_but_not_a_wall() -> None:
    nav = layout_nav("MiniGrid-FourRooms-v0", 3)
    key = layout_key(nav.encoding)
    free = nav.free_cells()
    for (x, y), d in ((free[0], 0), (free[-1], 3)):
        nav.set_pose(int(x), int(y), d)
        assert layout_key(nav.observation()) == key
    walled = nav.encoding.copy()
    walled[tuple(free[5])] = (2, 5, 0)  # a grey wall on a free cell
    assert layout_key(walled) != key


def test_layout_key_of_the_env_grid_ignores_goal_and_colours_but_not_door_state() -> None:
    env = make_minigrid("MiniGrid-MultiRoom-N2-S4-v0")
    env.reset(seed=0)
    enc = env.grid.encode()
    key = layout_key(enc)
    no_goal = enc.copy()
    no_goal[no_goal[..., 0] == 8] = (1, 0, 0)
    assert (enc[..., 0] == 8).any() and layout_key(no_goal) == key, "the goal square is not layout"
    recoloured = enc.copy()
    recoloured[..., 1] = (recoloured[..., 1] + 1) % 6
    assert layout_key(recoloured) == key
    door = tuple(np.argwhere(enc[..., 0] == 4)[0])
    opened = enc.copy()
    opened[door + (2,)] = 1 - min(int(opened[door + (2,)]), 1)
    assert layout_key(opened) != key
    env.grid.set(1, 1, Wall())  # the grid's own change, seen through the env
    assert layout_key(env.grid.encode()) != key
    with pytest.raises(ValueError, match="shape"):
        layout_key(enc[..., 0])


# ----------------------------------------------------------------------------- collection
def test_collection_holds_out_layouts_by_content(tmp_path: Path) -> None:
    excluded = tuple(range(8))
    cfg = CollectConfig(env_id=CROSSING, transitions=2_000, episode_len=20, layouts="random",
                        exclude_layout_seeds=excluded)  # fmt: skip
    meta = collect(cfg, tmp_path / "d", progress=False)
    ds = OfflineDataset.open(tmp_path / "d")
    held = layout_keys(layout_nav(CROSSING, s).encoding for s in excluded)
    keys = _episode_keys(ds)
    assert not held & set(keys)
    assert meta.held_out == {"layouts": len(held), "skipped": meta.held_out["skipped"]}
    # The redraws happened: drawing by seed alone would have collected held-out layouts.
    assert meta.held_out["skipped"] > 0 and ds.meta.held_out == meta.held_out


@pytest.mark.parametrize("name", ["fourrooms", "fourrooms-random", "mazerooms", "multiroom"])
def test_no_evaluated_layout_in_a_suites_training_data(name: str, tmp_path: Path) -> None:
    suite = SUITES[name]
    cfg = suite.experiment(quick=True)
    data = dataclasses.replace(cfg.data, transitions=20 * cfg.data.episode_len * (20 if name == "multiroom" else 5))
    collect(data, tmp_path / "d", progress=False)
    ds = OfflineDataset.open(tmp_path / "d")
    cache = LayoutCache(data.env_id)  # a fresh env: the recorded seeds' layouts, doors as at reset
    trained = layout_keys(cache.get(s).encoding for s in np.unique(ds.layout))
    evaluated = layout_keys(cache.get(s).encoding for s in suite.layouts(cfg))
    assert evaluated and not evaluated & trained


def test_a_dataset_held_out_by_seed_alone_is_collected_again(tmp_path: Path) -> None:
    cfg = dataclasses.replace(SUITES["debug"].experiment(), data=CollectConfig(
        env_id=CROSSING, transitions=100, episode_len=20, layouts="random", exclude_layout_seeds=(0,)))  # fmt: skip
    console = Console(quiet=True)
    ensure_data(cfg, tmp_path, console)
    assert ensure_data(cfg, tmp_path, console)[1] == 0.0, "an up-to-date dataset is reused"
    meta = tmp_path / "data" / "meta.json"
    raw = json.loads(meta.read_text())
    del raw["held_out"]  # as written before layouts were held out by content
    meta.write_text(json.dumps(raw))
    assert OfflineDataset.open(tmp_path / "data").meta.held_out == {}
    assert ensure_data(cfg, tmp_path, console)[1] > 0.0
    assert OfflineDataset.open(tmp_path / "data").meta.held_out["layouts"] == 1


def test_a_fixed_layout_equal_to_a_held_out_one_is_refused(tmp_path: Path) -> None:
    cfg = CollectConfig(env_id="MiniGrid-Empty-5x5-v0", transitions=50, layout_seed=0, exclude_layout_seeds=(1,))
    with pytest.raises(ConfigError, match="fixed layout 0 of 'MiniGrid-Empty-5x5-v0'"):
        collect(cfg, tmp_path / "d", progress=False)
    assert not (tmp_path / "d").exists()


def test_an_env_with_one_layout_cannot_hold_it_out(tmp_path: Path) -> None:
    cfg = CollectConfig(env_id="MiniGrid-Empty-5x5-v0", transitions=50, layouts="random", exclude_layout_seeds=(1,))
    with pytest.raises(ConfigError, match="Cannot hold out layouts of 'MiniGrid-Empty-5x5-v0' by content"):
        collect(cfg, tmp_path / "d", progress=False)


# ----------------------------------------------------------------------------- bad envs
@pytest.mark.parametrize(
    ("env_id", "fragment"),
    [
        ("MiniGrid-Fetch-5x5-N2-v0", "is not a goal-reaching task: after reset its grid holds no Goal square"),
        ("MiniGrid-Dynamic-Obstacles-5x5-v0", "has moving objects"),
        (PIXELS, "does not observe the grid"),
    ],
)
def test_envs_that_are_not_static_goal_reaching_grids_are_refused(env_id: str, fragment: str, tmp_path: Path) -> None:
    with pytest.raises(NotNavigationEnvError, match=f"'{env_id}'") as info:
        check_goal_reaching(env_id)
    assert fragment in str(info.value)
    with pytest.raises(NotNavigationEnvError):
        collect(CollectConfig(env_id=env_id, transitions=20), tmp_path / "d", progress=False)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("env_id", ["MiniGrid-FourRooms-v0", "hjepa/MazeRooms-v0", "MiniGrid-MultiRoom-N6-v0",
                                    "MiniGrid-DoorKey-8x8-v0", "MiniGrid-Empty-16x16-v0"])  # fmt: skip
def test_goal_reaching_envs_pass_the_check(env_id: str) -> None:
    check_goal_reaching(env_id)
