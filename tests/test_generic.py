"""Tests of the suites derived from an env (experiments/generic.py) and of `hjepa bench --env`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hjepa.envs import ACTIONS, make_minigrid
from hjepa.envs.oracle import LayoutOracle
from hjepa.experiments.cli import main
from hjepa.experiments.generic import distance_bins, generic_experiment, generic_suite, goal_tasks, profile_env
from hjepa.experiments.presets import HELD_OUT_LAYOUTS

DOORKEY, LAVA, EMPTY = "MiniGrid-DoorKey-5x5-v0", "MiniGrid-LavaGapS7-v0", "MiniGrid-Empty-16x16-v0"


def test_settings_come_from_the_env() -> None:
    doorkey, lava, empty = profile_env(DOORKEY), profile_env(LAVA), profile_env(EMPTY)
    assert doorkey.actions == ("left", "right", "forward", "pickup", "toggle") and doorkey.keys and doorkey.doors
    assert lava.actions == ("left", "right", "forward") and lava.lava and not lava.interacts
    assert empty.layouts == 1 and doorkey.max_steps == make_minigrid(DOORKEY).max_steps
    cfg = generic_experiment(DOORKEY, quick=True)
    assert cfg.data.action_subset == doorkey.actions and cfg.data.carry_prob > 0 and cfg.data.episode_len == 25
    assert generic_experiment(EMPTY).data.layouts == "fixed" and generic_suite(EMPTY).held_out == ()
    assert generic_experiment(EMPTY).data.episode_len == 100


def test_many_layouts_are_held_out_by_content() -> None:
    cfg = generic_experiment("MiniGrid-DoorKey-8x8-v0")
    assert cfg.data.exclude_layout_seeds == HELD_OUT_LAYOUTS and cfg.data.layouts == "random"
    assert generic_suite("MiniGrid-DoorKey-8x8-v0").held_out == HELD_OUT_LAYOUTS


def test_tasks_go_to_the_envs_own_goal_in_their_bins() -> None:
    actions = tuple(ACTIONS[a] for a in profile_env(DOORKEY).actions)
    oracle = LayoutOracle(DOORKEY, env_actions=actions)
    bins = distance_bins(oracle, HELD_OUT_LAYOUTS[:5])
    tasks = goal_tasks(DOORKEY, HELD_OUT_LAYOUTS[:5], 3, bins, seed=1, env_actions=actions)
    assert [t.bin for t in tasks] == [b for b in bins for _ in range(3)]
    assert tasks == goal_tasks(DOORKEY, HELD_OUT_LAYOUTS[:5], 3, bins, seed=1, env_actions=actions)
    for t in tasks:
        nav, graph = oracle.nav(t.layout_seed), oracle.graph(t.layout_seed)
        assert t.goal == nav.goal and t.distance == graph.distance(t.start, t.goal)
        lo, hi = bins[t.bin]
        assert lo <= t.distance <= hi
    long = [t for t in tasks if t.bin == list(bins)[-1]]
    assert any(ACTIONS["pickup"] in oracle.graph(t.layout_seed).path(t.start, t.goal) for t in long)


def test_bench_env_runs_end_to_end_and_evaluate_env_reruns_its_checkpoint(tmp_path: Path) -> None:
    tiny = ["--set", "data.transitions=2000", "--set", "train.steps=10", "--set", "train.batch_size=8",
            "--set", "train.epoch_steps=5", "--set", "train.val_batches=1", "--threads", "1"]  # fmt: skip
    out = tmp_path / "dk"
    assert main(["bench", "--env", DOORKEY, "--quick", "--out", str(out), "--episodes", "3",
                 "--agents", "random,oracle", *tiny]) == 0  # fmt: skip
    doc = json.loads((out / "results.json").read_text())
    assert doc["suite"] == DOORKEY and "few layouts" in doc["notes"]
    assert doc["agents"]["oracle"]["success"] == 1.0 and doc["agents"]["oracle"]["spl"] == 1.0
    assert doc["lava"] == {"random": 0, "oracle": 0}
    episodes = json.loads((out / "episodes.json").read_text())
    assert {tuple(e["extra"]["goal"]) for e in episodes} <= {(3, 3)}  # DoorKey-5x5's Goal square
    assert main(["evaluate", "--checkpoint", str(out), "--env", DOORKEY, "--out", str(tmp_path / "ev"),
                 "--agents", "oracle", "--episodes", "3", "--threads", "1"]) == 0  # fmt: skip
    again = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert again["agents"]["oracle"]["episodes"] == 3 and again["agents"]["oracle"]["success"] == 1.0
    figures = lambda d: [(w["figure"], w["value"]) for w in d["warnings"]]  # noqa: E731
    assert figures(again) == figures(doc)  # evaluate alone reads the run folder's training figures
    assert np.isclose(again["agents"]["oracle"]["spl"], 1.0)
