"""Tests of hjepa.data: the on-disk format (writer, reader, errors) and the collector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hjepa.data.collect import CollectConfig, collect, layout_seeds, random_actions
from hjepa.data.storage import FORMAT_VERSION, DatasetWriter, OfflineDataset
from hjepa.envs import action_spec, grid_to_rgb, layout_nav
from hjepa.errors import ConfigError, DatasetError, UnknownEnvError
from hjepa.specs import ActionSpec, ObsSpec

GRID = ObsSpec(kind="grid", shape=(4, 4, 3), dtype="uint8")
LENGTHS = (3, 5, 1)


def _episode(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    obs = rng.integers(0, 11, size=(length + 1, 4, 4, 3), dtype=np.uint8)
    return obs, rng.integers(0, 3, size=length).astype(np.int16), rng.integers(0, 4, size=(length + 1, 3))


def _write(path: Path, fail_after: int | None = None) -> list[tuple[np.ndarray, ...]]:
    """Write a 3-episode dataset; raise RuntimeError after ``fail_after`` episodes if given."""
    rng, episodes = np.random.default_rng(0), []
    with DatasetWriter(
        path, env_id="MiniGrid-Empty-5x5-v0", obs_spec=GRID, action_spec=action_spec(("left", "right", "forward")),
        num_steps=sum(LENGTHS) + len(LENGTHS), num_episodes=len(LENGTHS), seed=3, collector={"kind": "test"},
    ) as writer:
        for i, length in enumerate(LENGTHS):
            if i == fail_after:
                raise RuntimeError("boom")
            episodes.append(_episode(rng, length))
            writer.append_episode(*episodes[-1][:2], layout_seed=10 + i, poses=episodes[-1][2])
    return episodes


@pytest.fixture()
def dataset(tmp_path: Path) -> tuple[Path, list[tuple[np.ndarray, ...]]]:
    path = tmp_path / "ds"
    return path, _write(path)


# ------------------------------------------------------------------------ storage
def test_round_trip(dataset: tuple[Path, list[tuple[np.ndarray, ...]]]) -> None:
    path, episodes = dataset
    ds = OfflineDataset.open(path)
    assert (ds.num_episodes, ds.num_steps, ds.num_transitions) == (3, 12, 9)
    assert ds.meta.format_version == FORMAT_VERSION and ds.meta.seed == 3 and ds.meta.collector == {"kind": "test"}
    assert ds.obs_spec == GRID and ds.action_spec.n == 3
    assert isinstance(ds.obs, np.memmap) and not ds.obs.flags.writeable
    assert ds.episode_starts.tolist() == [0, 4, 10, 12]
    assert ds.episode_lengths.tolist() == list(LENGTHS)
    assert ds.episode_of_step().tolist() == [0] * 4 + [1] * 6 + [2] * 2
    assert ds.step_layout().tolist() == [10] * 4 + [11] * 6 + [12] * 2
    for e, (obs, actions, poses) in enumerate(episodes):
        lo, hi = ds.episode_starts[e], ds.episode_starts[e + 1]
        assert np.array_equal(ds.obs[lo:hi], obs) and np.array_equal(ds.pose[lo:hi], poses)
        assert np.array_equal(ds.actions[lo : hi - 1], actions) and ds.actions[hi - 1] == -1
    assert not list(path.parent.glob(".ds.*")), "the writer's temporary folder is left behind"


def test_open_run_folder(tmp_path: Path) -> None:
    _write(tmp_path / "run" / "data")
    assert OfflineDataset.open(tmp_path / "run").path == tmp_path / "run" / "data"


def test_continuous_actions_round_trip(tmp_path: Path) -> None:
    spec = ActionSpec(kind="continuous", dim=2)
    state = ObsSpec(kind="state", shape=(4,), dtype="float32")
    with DatasetWriter(tmp_path / "c", env_id="x", obs_spec=state, action_spec=spec, num_steps=3, num_episodes=1) as w:
        w.append_episode(np.ones((3, 4), np.float32), np.zeros((2, 2), np.float32), 0, np.zeros((3, 3)))
    ds = OfflineDataset.open(tmp_path / "c")
    assert ds.actions.shape == (3, 2) and np.isnan(ds.actions[2]).all() and not np.isnan(ds.actions[:2]).any()


def test_writer_exception_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        _write(tmp_path / "ds", fail_after=1)
    assert list(tmp_path.iterdir()) == []


def test_writer_exception_keeps_previous_dataset(dataset: tuple[Path, list]) -> None:
    path, _ = dataset
    before = OfflineDataset.open(path).obs[:].copy()
    with pytest.raises(RuntimeError):
        _write(path, fail_after=2)
    assert np.array_equal(OfflineDataset.open(path).obs, before)
    assert [p.name for p in path.parent.iterdir()] == ["ds"]


def test_writer_refuses_incomplete_dataset(tmp_path: Path) -> None:
    writer = DatasetWriter(
        tmp_path / "ds", env_id="x", obs_spec=GRID, action_spec=action_spec(("left",)), num_steps=4, num_episodes=1
    )
    with pytest.raises(DatasetError, match="incomplete"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def _edit_meta(path: Path, **changes: object) -> None:
    meta = json.loads((path / "meta.json").read_text())
    meta.update(changes)
    (path / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "meta.json").unlink(), "meta.json' is missing"),
        (lambda p: (p / "pose.npy").unlink(), "pose.npy' is missing"),
        (lambda p: (p / "meta.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "meta.json").write_text('{"format_version": 1}'), "lacks the keys"),
        (lambda p: _edit_meta(p, format_version=FORMAT_VERSION + 1), "format_version"),
        (lambda p: _edit_meta(p, num_steps=13, num_transitions=10), "obs.npy' is uint8"),
        (lambda p: _edit_meta(p, num_transitions=0), "empty"),
        (lambda p: (p / "obs.npy").write_bytes((p / "obs.npy").read_bytes()[:-50]), "obs.npy' is truncated"),
        (lambda p: (p / "actions.npy").write_bytes(b"garbage"), "actions.npy' is truncated or not"),
    ],
    ids=["no-meta", "no-array", "bad-json", "missing-keys", "version", "shape", "empty", "truncated", "garbage"],
)
def test_dataset_errors(dataset: tuple[Path, list], damage, message: str) -> None:
    path, _ = dataset
    damage(path)
    with pytest.raises(DatasetError, match=message):
        OfflineDataset.open(path)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        OfflineDataset.open(tmp_path / "nowhere")


# ------------------------------------------------------------------------ collector
def _collect(tmp_path: Path, name: str, **kwargs: object) -> OfflineDataset:
    cfg = CollectConfig(**{"transitions": 2_050, "episode_len": 100, "seed": 0, **kwargs})
    collect(cfg, tmp_path / name, progress=False)
    return OfflineDataset.open(tmp_path / name)


def test_collect_shapes_and_boundaries(tmp_path: Path) -> None:
    ds = _collect(tmp_path, "a")
    assert ds.num_transitions == 2_050 and ds.num_episodes == 21 and ds.num_steps == 2_071
    assert ds.episode_lengths.tolist() == [100] * 20 + [50]
    assert ds.obs.shape == (2_071, 19, 19, 3) and ds.obs.dtype == np.uint8 and ds.obs_spec.kind == "grid"
    last = ds.episode_starts[1:] - 1
    assert (ds.actions[last] == -1).all()
    acting = np.delete(np.asarray(ds.actions), last)
    assert acting.min() >= 0 and acting.max() < 3
    assert ds.meta.collector["transitions"] == 2_050 and ds.meta.env_id == "MiniGrid-FourRooms-v0"
    assert not (ds.obs[..., 0] == 8).any(), "the goal square must be removed"
    # The agent cell in each observation sits at the recorded pose.
    idx = np.arange(ds.num_steps)
    assert (ds.obs[idx, ds.pose[:, 0], ds.pose[:, 1]] == np.stack([np.full(len(idx), 10), 0 * idx, ds.pose[:, 2]], 1)).all()


def test_collect_replays_in_minigrid_rules(tmp_path: Path) -> None:
    """Each episode's recorded poses follow from its actions under GridNav's rules."""
    ds = _collect(tmp_path, "a", transitions=500)
    nav = layout_nav("MiniGrid-FourRooms-v0", 0)
    env_actions = np.asarray(ds.action_spec.env_actions)
    for e in range(ds.num_episodes):
        lo, hi = ds.episode_starts[e], ds.episode_starts[e + 1]
        nav.reset()
        nav.set_pose(*(int(v) for v in ds.pose[lo]))
        assert np.array_equal(nav.rollout(env_actions[ds.actions[lo : hi - 1]]), ds.pose[lo:hi])


def test_collect_is_deterministic(tmp_path: Path) -> None:
    a, b, c = _collect(tmp_path, "a"), _collect(tmp_path, "b"), _collect(tmp_path, "c", seed=1)
    for name in ("obs", "actions", "pose", "layout", "episode_starts"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not np.array_equal(a.actions, c.actions) and not np.array_equal(a.pose, c.pose)


def test_collect_starts_cover_free_cells(tmp_path: Path) -> None:
    ds = _collect(tmp_path, "a", transitions=4_000, episode_len=20)
    starts = {tuple(p) for p in ds.pose[ds.episode_starts[:-1], :2].tolist()}
    assert len(starts) > 100  # 200 uniform draws over 260 free cells give ~140 distinct
    free = {tuple(c) for c in layout_nav("MiniGrid-FourRooms-v0", 0).free_cells().tolist()}
    assert starts <= free


def test_collect_random_layouts(tmp_path: Path) -> None:
    ds = _collect(tmp_path, "a", layouts="random", exclude_layout_seeds=(1, 2, 3))
    assert ds.meta.layouts == "random" and len(set(ds.layout.tolist())) == ds.num_episodes
    walls = {ds.obs[s, ..., 0].__eq__(2).tobytes() for s in ds.episode_starts[:-1]}
    assert len(walls) > 1, "episodes should run in different layouts"


class _StubRng:
    """Returns the excluded seeds first, so the redraw path is exercised."""

    def __init__(self) -> None:
        self.calls = iter([np.array([1, 5, 2, 7]), np.array([2, 9]), np.array([11])])

    def integers(self, low: int, high: int, size: int, dtype: type) -> np.ndarray:
        return next(self.calls)


def test_layout_seeds_respect_exclusions() -> None:
    cfg = CollectConfig(layouts="random", exclude_layout_seeds=(1, 2))
    assert layout_seeds(cfg, 4, _StubRng()).tolist() == [11, 5, 9, 7]
    assert layout_seeds(CollectConfig(layout_seed=4), 3, _StubRng()).tolist() == [4, 4, 4]


def test_random_actions_momentum() -> None:
    rng = np.random.default_rng(0)
    plain, sticky = random_actions(rng, 10_000, 3, 0.0), random_actions(rng, 10_000, 3, 0.9)
    assert set(plain.tolist()) == {0, 1, 2} and plain.dtype == np.int16
    assert (np.diff(plain) == 0).mean() < 0.4 < 0.8 < (np.diff(sticky) == 0).mean()


def test_collect_image_mode(tmp_path: Path) -> None:
    grid = _collect(tmp_path, "g", transitions=300)
    image = _collect(tmp_path, "i", transitions=300, obs_mode="image", image_tile=3)
    assert image.obs_spec.kind == "image" and image.obs.shape == (303, 57, 57, 3)
    assert np.array_equal(image.obs, grid_to_rgb(grid.obs, tile=3))


def test_collect_multiroom_with_toggle(tmp_path: Path) -> None:
    ds = _collect(tmp_path, "m", env_id="MiniGrid-MultiRoom-N6-v0", action_subset=("left", "right", "forward", "toggle"))
    assert ds.action_spec.env_actions == (0, 1, 2, 5)
    assert (ds.obs[..., 0] == 4).any() and not (ds.obs[..., 0] == 8).any()
    door_states = ds.obs[..., 2][ds.obs[..., 0] == 4]
    assert {0, 1} <= set(door_states.tolist()), "some doors should have been opened"


def test_collect_door_open_prob_starts_episodes_with_open_doors(tmp_path: Path) -> None:
    kw = dict(env_id="MiniGrid-MultiRoom-N6-v0", action_subset=("left", "right", "forward"))  # no toggle
    closed, mixed = _collect(tmp_path, "c", **kw), _collect(tmp_path, "o", door_open_prob=0.5, **kw)
    firsts = [ds.obs[ds.episode_starts[:-1]] for ds in (closed, mixed)]
    open_doors = [((f[..., 0] == 4) & (f[..., 2] == 0)).sum(axis=(1, 2)) for f in firsts]
    assert (open_doors[0] == 0).all() and (open_doors[1] > 0).mean() > 0.5
    doors = (firsts[1][..., 0] == 4).sum(axis=(1, 2))
    assert (open_doors[1] < doors).any(), "some doors stay closed"


def test_collect_door_start_prob_starts_episodes_beside_doors(tmp_path: Path) -> None:
    kw = dict(env_id="MiniGrid-MultiRoom-N6-v0", layouts="random", transitions=600, episode_len=10)

    def beside_a_door(ds: OfflineDataset) -> np.ndarray:
        """Per episode: its first grid's agent is 4-adjacent to a door cell."""
        firsts = ds.obs[ds.episode_starts[:-1]]
        out = []
        for grid in firsts:
            (ax, ay), doors = np.argwhere(grid[..., 0] == 10)[0], np.argwhere(grid[..., 0] == 4)
            out.append(bool((np.abs(doors - [ax, ay]).sum(1) == 1).any()))
        return np.array(out)

    anywhere, beside = _collect(tmp_path, "a", **kw), _collect(tmp_path, "b", door_start_prob=1.0, **kw)
    assert beside_a_door(beside).all()
    assert beside_a_door(anywhere).mean() < 0.5
    fourrooms = _collect(tmp_path, "f", door_start_prob=1.0, transitions=200, episode_len=10)  # no doors
    assert fourrooms.num_episodes == 20


def test_collect_with_progress_bar(tmp_path: Path) -> None:
    collect(CollectConfig(transitions=50, episode_len=20), tmp_path / "p", progress=True)
    assert OfflineDataset.open(tmp_path / "p").num_transitions == 50


@pytest.mark.parametrize(
    "bad",
    [
        {"transitions": 0},
        {"transitions": -5},
        {"episode_len": 0},
        {"repeat_prob": 1.0},
        {"repeat_prob": -0.1},
        {"door_open_prob": 1.5},
        {"door_start_prob": -0.5},
        {"obs_mode": "pixels"},
        {"layouts": "some"},
        {"image_tile": 1},
        {"action_subset": ("left", "jump")},
        {"seed": -1},
        {"layout_seed": 3, "exclude_layout_seeds": (3,)},
    ],
)
def test_collect_config_validation(bad: dict) -> None:
    with pytest.raises(ConfigError):
        CollectConfig(**bad)


def test_collect_config_dict_round_trip() -> None:
    cfg = CollectConfig(exclude_layout_seeds=[1, 2], action_subset=["left", "forward"], repeat_prob=0.5)
    assert cfg.exclude_layout_seeds == (1, 2)
    assert CollectConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError):
        CollectConfig.from_dict({"nope": 1})


def test_collect_unknown_env_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(UnknownEnvError):
        collect(CollectConfig(env_id="MiniGrid-Nope-v0", transitions=10), tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
