"""``hjepa probe``: snapped one-step predictions and one imagination. With the env's own
dynamics in place of the predictor every prediction snaps right and the imagined distance is the
oracle's; a predictor that flips a far cell gets every prediction wrong, and the probe says where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hjepa.config import ExperimentConfig, LevelConfig
from hjepa.envs.oracle import LayoutOracle
from hjepa.experiments.cli import EXIT_USER_ERROR, main
from hjepa.experiments.probes import imagine_probe, snap_probe
from hjepa.planning.goal_cell import agent_mask
from hjepa.planning.imagine import cell_codebook
from hjepa.planning.imagined_memory import ImaginedMemory
from hjepa.specs import ActionSpec, ObsSpec
from hjepa.stack import HJEPA
from true_dynamics import FarFlips, GridDynamics, codebook_observations

ENV, LAYOUT = "MiniGrid-FourRooms-v0", 100_003


@pytest.fixture(scope="module")
def world():
    oracle = LayoutOracle(ENV)
    nav = oracle.nav(LAYOUT)
    torch.manual_seed(0)
    cfg = ExperimentConfig(levels=(LevelConfig(kind="gridmap", args={"channels": 4, "conv": 8}),))
    actions = ActionSpec("discrete", n=3, env_actions=(0, 1, 2))
    stack = HJEPA.from_config(cfg, ObsSpec("grid", (*nav.observation().shape[:2], 3), "uint8"), actions).eval()
    obs = codebook_observations(nav)
    book = cell_codebook(stack.levels[0], obs)
    stack.levels[0].predict_map = GridDynamics(book)
    return stack, oracle, obs, book


def test_the_true_dynamics_snap_right_and_far_flips_are_found_where_they_are(world) -> None:
    stack, oracle, _, book = world
    level = stack.levels[0]
    found = snap_probe(level, book, oracle, [LAYOUT], poses=12)
    assert found.actions == ("left", "right", "forward") and found.total == (12, 12, 12)
    assert found.right == found.total and found.share == 1.0 and found.wrong == ()
    level.predict_map = FarFlips(GridDynamics(book), agent_mask(level, book))
    try:
        flipped = snap_probe(level, book, oracle, [LAYOUT], poses=12)
    finally:
        level.predict_map = GridDynamics(book)
    assert flipped.right == (0, 0, 0) and flipped.share == 0.0
    assert {w.distance for w in flipped.wrong} <= {2, 3, 4}  # 3 from the agent after the step; a move shifts it by 1
    assert len(flipped.agent_codes) == 4


def test_one_imagination_finds_the_oracles_distance_to_the_goal_cell(world) -> None:
    stack, oracle, obs, _ = world
    graph = oracle.graph(LAYOUT)
    cells = [tuple(int(v) for v in c) for c in graph.cells]
    start, goal = (*cells[0], 0), cells[len(cells) // 2]
    found = imagine_probe(stack, ImaginedMemory(stack, obs), oracle, LAYOUT, start, goal)
    assert found.goal_found and found.distance == graph.distances_to(goal)[start]
    assert found.poses == found.nodes <= 4 * len(cells) and not found.complete


def test_probe_commands_write_their_figures_and_refuse_bad_input(tiny_data: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    run = tmp_path / "run"  # `train` derives one gridmap level from the dataset
    assert main(["train", "--data", str(tiny_data), "--out", str(run), "--steps", "2", "--threads", "1"]) == 0
    assert main(["probe", "snap", "--checkpoint", str(run), "--poses", "3", "--out", str(tmp_path / "p")]) == 0
    doc = json.loads((tmp_path / "p" / "probe.json").read_text())
    assert doc["probe"] == "snap" and doc["total"] == [3, 3, 3] and 0.0 <= doc["share"] <= 1.0
    capsys.readouterr()
    assert main(["probe", "imagine", "--checkpoint", str(run), "--start", "0,0,0", "--goal", "3,3"]) == EXIT_USER_ERROR
    assert "start cell (0, 0) is a wall" in capsys.readouterr().err
    assert main(["probe", "imagine", "--checkpoint", str(run), "--start", "1,1,7", "--goal", "3,3"]) == EXIT_USER_ERROR
    assert main(["probe", "snap", "--checkpoint", str(run), "--poses", "0"]) == EXIT_USER_ERROR
    assert main(["probe", "imagine", "--checkpoint", str(run), "--start", "1,1", "--goal", "3,3"]) == EXIT_USER_ERROR
    with pytest.raises(SystemExit):
        main(["probe", "reach", "--checkpoint", str(run)])
