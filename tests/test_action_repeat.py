"""Action repeat (``ActionSpec.repeat``): PointMaze data recorded every k physics steps, and
episodes that hold each of the model's forces for k env steps."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hjepa.agents.base import Agent
from hjepa.errors import ConfigError, SpecMismatchError
from hjepa.specs import ActionSpec, ObsSpec


@pytest.fixture(scope="module")
def nav():
    """Skip unless the ``nav`` extra is installed."""
    pytest.importorskip("gymnasium_robotics")
    pytest.importorskip("mujoco")


def test_repeat_is_validated_and_old_specs_read_as_one():
    spec = ActionSpec("continuous", dim=2, repeat=4)
    assert ActionSpec.from_dict(spec.to_dict()) == spec
    old = {k: v for k, v in spec.to_dict().items() if k != "repeat"}  # saved before the field existed
    assert ActionSpec.from_dict(old).repeat == 1
    for bad in (0, -2, 1.5):
        with pytest.raises(SpecMismatchError, match="repeat"):
            ActionSpec("continuous", dim=2, repeat=bad)


def test_minigrid_refuses_an_action_repeat():
    from hjepa.data.collect import CollectConfig

    with pytest.raises(ConfigError, match="action_repeat is PointMaze's"):
        CollectConfig(action_repeat=2)
    with pytest.raises(ConfigError, match="action_repeat must be >= 1"):
        CollectConfig(env_id="PointMaze_UMaze-v3", obs_mode="state", action_repeat=0)


def test_repeated_data_records_every_kth_state_of_the_held_force(nav, tmp_path):
    from hjepa.data.collect import CollectConfig, collect
    from hjepa.data.storage import OfflineDataset
    from hjepa.envs.pointmaze import PointMazeSim

    cfg = CollectConfig(env_id="PointMaze_UMaze-v3", transitions=120, episode_len=40, obs_mode="state",
                        repeat_prob=0.5, action_repeat=3, seed=1)  # fmt: skip
    collect(cfg, tmp_path / "d", progress=False)
    ds = OfflineDataset.open(tmp_path / "d")
    assert ds.action_spec.repeat == 3 and ds.num_steps == 120 + 3
    sim = PointMazeSim("PointMaze_UMaze-v3")
    for t in (0, 7, 38):  # replay single transitions from the recorded state
        sim.set_state(ds.obs[t, :2], ds.obs[t, 2:])
        held = sim.rollout(np.repeat(ds.actions[t][None], 3, axis=0))[-1]
        sim.set_state(ds.obs[t, :2], ds.obs[t, 2:])
        single = sim.rollout(ds.actions[t][None])[-1]
        assert np.abs(held - ds.obs[t + 1]).max() < 1e-3 < np.abs(single - ds.obs[t + 1]).max()


class _Push(Agent):
    """Pushes right and counts its decisions."""

    name = "push"

    def _reset(self, obs: np.ndarray, goal_obs: np.ndarray) -> None:
        self.decisions = 0

    def _act(self, obs: np.ndarray) -> np.ndarray:
        self.decisions += 1
        return np.array([1.0, 0.0], dtype=np.float32)


def test_episodes_hold_each_force_for_repeat_env_steps(nav):
    from hjepa.envs.maze_oracle import MazeTask
    from hjepa.experiments.evaluate_pointmaze import PointMazeEpisodes

    stack = SimpleNamespace(obs_spec=ObsSpec("state", (4,), "float32"), action_spec=ActionSpec("continuous", dim=2,
                            repeat=4))  # fmt: skip
    episodes = PointMazeEpisodes(stack, "PointMaze_Medium-v3")
    start = episodes.sim.maze.cell_to_xy((1, 1))
    task = MazeTask(env_id="PointMaze_Medium-v3", start=tuple(start), goal=tuple(episodes.sim.maze.cell_to_xy((6, 6))),
                    distance=10.0, bin="long")  # fmt: skip
    agent = _Push()
    record = episodes.run(agent, task, max_steps=10)
    assert record.steps == 10 and agent.decisions == 3  # 4 + 4 + the 2 steps left
    assert len(record.plan_ms) == 10 and not record.success


def test_flat_budget_is_per_model_step():
    from hjepa.experiments.evaluate import calls_per_decision
    from hjepa.metrics import EpisodeRecord

    def record(steps: int, calls: int) -> EpisodeRecord:
        return EpisodeRecord(agent="hjepa", bin="b", success=True, steps=steps, path_len=1.0, oracle_len=1.0,
                             predictor_calls=calls, plan_ms=[0.0] * steps)  # fmt: skip

    records = [record(10, 30), record(7, 20)]  # 3 + 2 model steps of 4 env steps (the last ones cut short)
    assert calls_per_decision(records, 4) == 10.0
    assert calls_per_decision(records, 1) == 50 / 17  # no repeat: per env step
