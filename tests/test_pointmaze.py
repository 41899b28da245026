"""PointMaze: the rasteriser, the geodesic oracle and its tasks, the simulator against env.step,
collected datasets, the continuous hierarchy, the agents, and a tiny end-to-end bench.

Tests that step MuJoCo take the ``nav`` fixture, which skips them cleanly when the ``nav``
extra (gymnasium-robotics, mujoco) is not installed; the map, oracle and raster tests need
nothing beyond hjepa's own dependencies.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np
import pytest
import torch

from hjepa.config import CriticConfig, ExperimentConfig, LevelConfig, TrainConfig
from hjepa.envs.maze_oracle import DistanceBins, MazeMap, MazeOracle, fixed_maze_tasks, make_maze_tasks
from hjepa.envs.maze_raster import AGENT_RGB, FLOOR_RGB, WALL_RGB, MazeRaster
from hjepa.envs.pointmaze import GIANT, GIANT_ID, GIANT_TASKS, MAZES, MEDIUM, Observer, maze_info, pose_record
from hjepa.errors import ConfigError, InvalidGoalError, MissingExtraError, SpecMismatchError, UnknownEnvError
from hjepa.specs import ActionSpec, ObsSpec

# A U: down the left column, along the bottom row, up the right column.
U_MAP = MazeMap(("#####", "#.#.#", "#.#.#", "#...#", "#####"))
TWO_ROOMS = MazeMap(("#####", "#.#.#", "#####"))  # two free cells that no path joins
BINS = DistanceBins.from_mapping({"short": (0.5, 3), "long": (3.000001, math.inf)})


@pytest.fixture(scope="module")
def nav():
    """Skip unless the ``nav`` extra is installed."""
    pytest.importorskip("gymnasium_robotics")
    pytest.importorskip("mujoco")


# ----------------------------------------------------------------------------- maps and raster
def test_maze_map_places_cells_as_gymnasium_robotics():
    # 8 x 8 Medium: the centre of cell (i, j) is x = j + 0.5 - 4, y = 4 - (i + 0.5).
    assert MEDIUM.cell_to_xy((1, 1)).tolist() == [-2.5, 2.5]
    assert MEDIUM.cell_to_xy((6, 5)).tolist() == [1.5, -2.5]
    assert MEDIUM.xy_to_cell((-2.5, 2.5)) == (1, 1) and MEDIUM.xy_to_cell((1.99, -2.01)) == (6, 5)
    assert GIANT.shape == (12, 16) and len(GIANT.free_cells) == 86
    assert all(GIANT.is_free(a) and GIANT.is_free(b) for a, b in GIANT_TASKS)


def test_raster_draws_walls_floor_and_agent_where_the_map_says():
    raster = MazeRaster(MEDIUM, tile=8)  # 8 pixels per 1 m cell, agent radius 2.4 px
    img = raster.render(MEDIUM.cell_to_xy((1, 1)))  # centre of cell (1, 1): pixel centre (11.5, 11.5)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert tuple(img[4, 4]) == WALL_RGB  # cell (0, 0)
    assert tuple(img[3 * 8 + 4, 0 * 8 + 4]) == WALL_RGB  # cell (3, 0)
    assert tuple(img[2 * 8 + 4, 3 * 8 + 4]) == WALL_RGB  # cell (2, 3)
    assert tuple(img[6 * 8 + 4, 6 * 8 + 4]) == FLOOR_RGB  # cell (6, 6), free and far from the agent
    for r, c in [(11, 11), (12, 12), (11, 13), (13, 11)]:  # within 1.9 px of the centre: fully covered
        assert tuple(img[r, c]) == AGENT_RGB
    assert tuple(img[10, 13]) == (199, 0, 0)  # 2.12 px away: anti-aliased, 0.78 of the way to red
    assert tuple(img[11, 15]) == FLOOR_RGB and tuple(img[7, 11]) == WALL_RGB  # beyond the disk
    # 0.3 m to the right moves the disk 2.4 px: pixel column 14 turns red, column 9 does not.
    moved = raster.render(MEDIUM.cell_to_xy((1, 1)) + np.array([0.3, 0.0]))
    assert tuple(moved[11, 14]) == AGENT_RGB and tuple(moved[11, 9]) == FLOOR_RGB


def test_raster_batches_and_keeps_aspect():
    large = MAZES["PointMaze_Large-v3"].maze
    raster = MazeRaster(large, tile=4)
    xy = np.stack([large.cell_to_xy(c) for c in large.free_cells[:6]]).reshape(2, 3, 2)
    imgs = raster.render(xy)
    assert imgs.shape == (2, 3, 36, 48, 3)
    for k, cell in enumerate(large.free_cells[:6]):
        one = raster.render(large.cell_to_xy(cell))
        assert np.array_equal(imgs.reshape(6, 36, 48, 3)[k], one)
        assert tuple(one[cell[0] * 4 + 2, cell[1] * 4 + 2]) == AGENT_RGB
    with pytest.raises(ConfigError, match="tile"):
        MazeRaster(large, tile=1)


def test_observer_goal_observation_is_at_rest():
    state = Observer(MEDIUM, "state")
    assert state.spec == ObsSpec("state", (4,), "float32")
    assert state.at_rest((1.5, -2.5)).tolist() == [1.5, -2.5, 0.0, 0.0]
    image = Observer(MEDIUM, "image", tile=8)
    assert image.spec == ObsSpec("image", (64, 64, 3), "uint8")
    assert np.array_equal(image.at_rest((-2.5, 2.5)), MazeRaster(MEDIUM, 8).render((-2.5, 2.5)))
    with pytest.raises(ConfigError):
        Observer(MEDIUM, "grid")


# ----------------------------------------------------------------------------- oracle
def test_geodesic_distances_on_a_hand_made_maze():
    oracle = MazeOracle(U_MAP)
    top_left, top_right = U_MAP.cell_to_xy((1, 1)), U_MAP.cell_to_xy((1, 3))
    assert oracle.distance(top_left, top_right) == pytest.approx(6.0)  # 2 m apart as the crow flies
    assert oracle.cell_path((1, 1), (1, 3)) == [(1, 1), (2, 1), (3, 1), (3, 2), (3, 3), (2, 3), (1, 3)]
    assert oracle.distance(top_left + [0.0, 0.2], top_right) == pytest.approx(6.2)  # 0.2 m further up
    assert oracle.distance(top_left, top_left + [0.3, -0.4]) == pytest.approx(0.5)  # same cell: straight
    assert oracle.distance(U_MAP.cell_to_xy((3, 2)), top_right) == pytest.approx(3.0)
    scaled = MazeOracle(dataclasses.replace(U_MAP, scaling=2.0))
    assert scaled.distance(scaled.maze.cell_to_xy((1, 1)), scaled.maze.cell_to_xy((1, 3))) == pytest.approx(12.0)


def test_oracle_rejects_goals_outside_the_maze_in_walls_or_unreachable():
    oracle = MazeOracle(U_MAP)
    start = U_MAP.cell_to_xy((1, 1))
    with pytest.raises(InvalidGoalError, match="outside the maze"):
        oracle.distance(start, (9.0, 0.0))
    with pytest.raises(InvalidGoalError, match="inside a wall"):
        oracle.distance(start, U_MAP.cell_to_xy((1, 2)))
    with pytest.raises(InvalidGoalError, match="finite"):
        oracle.distance(start, (math.nan, 0.0))
    two = MazeOracle(TWO_ROOMS)
    with pytest.raises(InvalidGoalError, match="cannot be reached"):
        two.distance(TWO_ROOMS.cell_to_xy((1, 1)), TWO_ROOMS.cell_to_xy((1, 3)))
    with pytest.raises(ConfigError):
        MazeMap(("##", "#"))


def test_unknown_maze_and_missing_extra_are_clear_errors(monkeypatch):
    from hjepa.envs.pointmaze import PointMazeSim, require_nav

    with pytest.raises(UnknownEnvError, match="PointMaze_Medium-v3"):
        maze_info("PointMaze_Huge-v3")
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match='pip install "hjepa\\[nav\\]"'):
        require_nav()
    with pytest.raises(MissingExtraError):
        PointMazeSim("PointMaze_Medium-v3")


def test_cli_without_the_extra_exits_with_the_install_hint(monkeypatch, tmp_path, capsys):
    from hjepa.experiments.cli import main

    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)
    code = main(["collect", "--env", "PointMaze_Medium-v3", "--transitions", "100", "--out", str(tmp_path)])
    assert code == 2 and 'pip install "hjepa[nav]"' in capsys.readouterr().err


def test_tasks_are_seeded_stratified_and_valid():
    tasks = make_maze_tasks("PointMaze_Medium-v3", MEDIUM, 4, BINS, seed=3)
    again = make_maze_tasks("PointMaze_Medium-v3", MEDIUM, 4, BINS, seed=3)
    assert tasks == again and tasks != make_maze_tasks("PointMaze_Medium-v3", MEDIUM, 4, BINS, seed=4)
    assert [t.bin for t in tasks] == ["short"] * 4 + ["long"] * 4
    oracle = MazeOracle(MEDIUM)
    for t in tasks:
        lo, hi = BINS[t.bin]
        assert lo <= t.distance <= hi and t.distance == pytest.approx(oracle.distance(t.start, t.goal), abs=1e-3)
    with pytest.raises(ConfigError, match="could not fill"):
        make_maze_tasks("PointMaze_Medium-v3", MEDIUM, 1, {"far": (50, 60)}, seed=0, max_draws=200)


def test_giant_tasks_are_ogbenchs_five():
    tasks = fixed_maze_tasks(GIANT_ID, GIANT, GIANT_TASKS, {"all": (0.5, math.inf)}, repeats=2, seed=0)
    assert [t.task_id for t in tasks] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    for t in tasks:
        start, goal = GIANT_TASKS[t.task_id - 1]
        assert GIANT.xy_to_cell(t.start) == start and GIANT.xy_to_cell(t.goal) == goal
    assert MazeOracle(GIANT).cell_distance((1, 1), (10, 14)) == 30.0


def test_pose_record_is_millimetres_and_cell():
    states = np.array([[-2.5, 2.5, 1.0, 0.0], [1.2345, -2.5, 0.0, 0.0]])
    poses = pose_record(states, MEDIUM)
    assert poses.dtype == np.int16 and poses.tolist() == [[-2500, 2500, 9], [1234, -2500, 53]]


# ----------------------------------------------------------------------------- MuJoCo
def test_sim_matches_env_step_and_giant_tasks(nav):
    import gymnasium

    from hjepa.envs.pointmaze import PointMazeSim

    env = gymnasium.make("PointMaze_Medium-v3")
    obs, _ = env.reset(seed=1)
    actions = np.random.default_rng(0).uniform(-1.5, 1.5, size=(200, 2))  # beyond the box: both clip
    expected = np.array([obs["observation"]] + [env.step(a)[0]["observation"] for a in actions])
    sim = PointMazeSim("PointMaze_Medium-v3")
    sim.set_state(obs["observation"][:2])
    assert np.array_equal(sim.rollout(actions), expected)
    assert MazeMap.from_grid(gymnasium.spec("PointMaze_Medium-v3").kwargs["maze_map"]) == MEDIUM
    giant = gymnasium.make(GIANT_ID).unwrapped
    for task_id, (start, goal) in enumerate(GIANT_TASKS, start=1):
        obs, _ = giant.reset(seed=task_id, options={"task_id": task_id})
        assert GIANT.xy_to_cell(obs["observation"][:2]) == start and GIANT.xy_to_cell(obs["desired_goal"]) == goal


@pytest.mark.parametrize("obs_mode", ["state", "image"])
def test_collected_datasets_have_the_declared_shapes(nav, tmp_path, obs_mode):
    from hjepa.data.collect import CollectConfig, collect
    from hjepa.data.storage import OfflineDataset

    cfg = CollectConfig(env_id="PointMaze_Medium-v3", transitions=1050, episode_len=100, obs_mode=obs_mode,
                        image_tile=8, repeat_prob=0.8, seed=5)  # fmt: skip
    collect(cfg, tmp_path / "a", progress=False)
    ds = OfflineDataset.open(tmp_path / "a")
    n = 1050 + 11  # 10 episodes of 100 and one of 50, each with one more observation than actions
    assert ds.num_steps == n and ds.num_episodes == 11 and ds.episode_lengths.tolist() == [100] * 10 + [50]
    shape = (4,) if obs_mode == "state" else (64, 64, 3)
    assert ds.obs.shape == (n, *shape) and ds.obs.dtype == (np.float32 if obs_mode == "state" else np.uint8)
    assert ds.action_spec == ActionSpec("continuous", dim=2, low=-1.0, high=1.0, names=("force_x", "force_y"))
    ends = np.asarray(ds.episode_starts)[1:] - 1
    assert np.isnan(ds.actions[ends]).all() and np.abs(np.delete(ds.actions, ends, axis=0)).max() <= 1.0
    assert ds.pose.shape == (n, 3) and ds.pose.dtype == np.int16
    free = {i * 8 + j for i, j in MEDIUM.free_cells}
    assert set(np.unique(ds.pose[:, 2]).tolist()) <= free  # the ball never enters a wall cell
    acts = np.delete(ds.actions, ends, axis=0)
    repeats = np.mean(np.all(acts[1:] == acts[:-1], axis=1))
    assert 0.7 < repeats < 0.9  # momentum: ~repeat_prob of the forces repeat
    if obs_mode == "state":
        assert np.abs(ds.pose[:, :2] / 1000.0 - ds.obs[:, :2]).max() <= 0.0006
        assert np.abs(ds.obs[:, 2:]).max() <= 5.0 + 0.25  # speed clipped before each step
    collect(cfg, tmp_path / "b", progress=False)
    assert np.array_equal(OfflineDataset.open(tmp_path / "b").obs, ds.obs)  # seeded


def test_oracle_agent_reaches_goals_with_spl_one(nav):
    from hjepa.agents import PointMazeOracleAgent
    from hjepa.envs.pointmaze import PointMazeSim

    sim = PointMazeSim("PointMaze_Medium-v3")
    agent = PointMazeOracleAgent(sim)
    for task in make_maze_tasks("PointMaze_Medium-v3", MEDIUM, 2, BINS, seed=0):
        sim.set_state(task.start)
        sim.goal = np.array(task.goal)
        agent.reset(None, None)
        steps, path = 0, 0.0
        while not sim.success() and steps < 600:
            before = sim.xy
            sim.step(agent.act(None))
            steps, path = steps + 1, path + float(np.linalg.norm(sim.xy - before))
        assert sim.success() and path <= task.distance * 1.05


# ----------------------------------------------------------------------------- planning
def _tiny_continuous_stack():
    from hjepa.critic import attach_critics
    from hjepa.stack import HJEPA

    levels = (LevelConfig(kind="state", dim=8, hidden=16), LevelConfig(kind="temporal", dim=8, stride=2, action_dim=3,
              hidden=16), LevelConfig(kind="temporal", dim=8, stride=2, action_dim=3, hidden=16))  # fmt: skip
    cfg = ExperimentConfig(levels=levels, critic=CriticConfig(hidden=16, depth=1))
    torch.manual_seed(0)
    stack = HJEPA.from_config(cfg, ObsSpec("state", (4,), "float32"), ActionSpec("continuous", dim=2))
    attach_critics(stack, cfg.critic)
    return stack.eval()


def test_continuous_hierarchy_plans_forces_in_the_box_deterministically():
    from hjepa.agents import FlatAgent, HJEPAAgent
    from hjepa.planning.configurator import RuleConfigurator

    stack = _tiny_continuous_stack()
    obs, goal = np.array([0.0, 0.0, 0.0, 0.0], np.float32), np.array([2.0, -1.0, 0.0, 0.0], np.float32)
    runs = []
    for _ in range(2):
        agent = HJEPAAgent(stack, RuleConfigurator(width0=16, flat_horizon=3), seed=1)
        agent.reset(obs, goal)
        runs.append(np.stack([agent.act(obs) for _ in range(4)]))
    assert runs[0].shape == (4, 2) and runs[0].dtype == np.float32 and np.abs(runs[0]).max() <= 1.0
    assert np.array_equal(runs[0], runs[1])
    specs = agent.trace[0].specs
    assert specs[0].planner == "gaussian_cem" and all(s.planner == "beam" for s in specs[1:])
    budget = agent.predictor_calls / 4
    flat = FlatAgent(stack, budget, horizon=5, seed=0)
    flat.reset(obs, goal)
    flat.act(obs)
    assert flat.width == (budget - 5) // 15 and flat.predictor_calls <= budget


def test_configurator_judges_reach_with_its_own_or_the_top_critic():
    from hjepa.planning.configurator import RuleConfigurator

    class Says(torch.nn.Module):  # a critic that estimates a fixed number of env steps
        def __init__(self, steps):
            super().__init__()
            self.steps = steps

        def distance(self, s, g):
            return torch.tensor(float(self.steps))

    stack = _tiny_continuous_stack()  # taus 1, 2, 4
    for k, steps in enumerate([3, 500, 500]):  # level 0 calls the goal near, the levels above far
        stack.levels[k].heads["critic"] = Says(steps)
    states = goals = [torch.zeros(8)] * 3
    own = RuleConfigurator(flat_horizon=4).configure(stack, states, goals)
    top = RuleConfigurator(flat_horizon=4, judge="top").configure(stack, states, goals)
    assert [s.level for s in own] == [0] and [s.level for s in top] == [0, 1, 2]
    stack.levels[2].heads["critic"] = Says(5)  # within level 1's reach (3 steps of tau 2): levels 0-1
    assert [s.level for s in RuleConfigurator(flat_horizon=4, judge="top").configure(stack, states, goals)] == [0, 1]
    with pytest.raises(ConfigError, match="judge"):
        RuleConfigurator(judge="lowest")


def test_image_observations_feed_the_hierarchy():
    from hjepa.agents import HJEPAAgent
    from hjepa.envs.pointmaze import UMAZE
    from hjepa.planning.configurator import RuleConfigurator
    from hjepa.stack import HJEPA

    observer = Observer(UMAZE, "image", tile=4)
    levels = (LevelConfig(kind="image", dim=8, hidden=16, args={"channels": 4}),
              LevelConfig(kind="temporal", dim=8, stride=2, action_dim=3, hidden=16))  # fmt: skip
    torch.manual_seed(0)
    stack = HJEPA.from_config(ExperimentConfig(levels=levels), observer.spec, ActionSpec("continuous", dim=2)).eval()
    agent = HJEPAAgent(stack, RuleConfigurator(width0=8, width=4, vocab=4), seed=0)
    agent.reset(observer.at_rest(UMAZE.cell_to_xy((1, 1))), observer.at_rest(UMAZE.cell_to_xy((3, 1))))
    action = agent.act(observer.at_rest(UMAZE.cell_to_xy((1, 2))))
    assert observer.spec.shape == (20, 20, 3) and action.shape == (2,) and np.abs(action).max() <= 1.0


def test_planner_kinds_must_match_the_action_space():
    from hjepa.planning.configurator import RuleConfigurator
    from hjepa.planning.hierarchy import HierarchicalPlanner, continuous_chunks

    stack = _tiny_continuous_stack()
    planner = HierarchicalPlanner(stack, RuleConfigurator(continuous_planner="mppi", planner="cem"))
    planner.reset(torch.zeros(4))
    action, trace = planner.act(torch.zeros(4))
    assert action.shape == (2,) and trace.specs[0].planner == "mppi"
    with pytest.raises(ConfigError, match="continuous_planner"):
        RuleConfigurator(continuous_planner="beam")

    class BeamEverywhere(RuleConfigurator):
        def configure(self, stack, states, goals):
            return [dataclasses.replace(s, planner="beam") for s in super().configure(stack, states, goals)]

    beam = HierarchicalPlanner(stack, BeamEverywhere())
    beam.reset(torch.zeros(4))
    with pytest.raises(SpecMismatchError, match="continuous env actions"):
        beam.act(torch.zeros(4))
    chunks = continuous_chunks(50, 6, ActionSpec("continuous", dim=2), torch.Generator().manual_seed(0))
    assert chunks.shape == (50, 6, 2) and chunks.abs().max() <= 1.0
    assert 0.6 < float((chunks[:, 1:] == chunks[:, :-1]).all(-1).float().mean()) < 0.95  # held ~80%


@pytest.mark.slow
def test_tiny_end_to_end_bench_on_umaze(nav, tmp_path):
    from rich.console import Console

    from hjepa.experiments import presets
    from hjepa.experiments.bench import Suite, bench
    from hjepa.metrics import validate_results
    from hjepa.planning.configurator import RuleConfigurator

    base = presets.pointmaze("PointMaze_UMaze-v3", "tiny", quick=True)
    tiny = (LevelConfig(kind="state", dim=8, hidden=16),
            LevelConfig(kind="temporal", dim=8, stride=2, action_dim=3, hidden=16))  # fmt: skip
    cfg = dataclasses.replace(base, levels=tiny, data=dataclasses.replace(base.data, transitions=2000, episode_len=50),
                              train=TrainConfig(steps=20, batch_size=16, epoch_steps=20, warmup_steps=5, log_every=5,
                                                val_batches=1),
                              critic=CriticConfig(steps=20, batch_size=64, hidden=16, depth=1))  # fmt: skip
    cheap = RuleConfigurator(width0=8, width=4, vocab=8, flat_horizon=3)
    near = DistanceBins.from_mapping({"short": (0.5, 1.5), "medium": (1.500001, 2.5)})  # the oracle needs < 70 steps
    suite = Suite("tiny", lambda quick=True, seed=0: cfg, near, 1, 1, 80, flat_horizon=4, configurator=cheap)
    doc = bench(suite, cfg, tmp_path, quick=True, console=Console(quiet=True))
    validate_results(doc)
    agents = doc["agents"]
    assert list(agents) == ["hjepa", "flat", "random", "oracle"] and all(a["episodes"] == 2 for a in agents.values())
    assert agents["oracle"]["success"] == 1.0 and agents["oracle"]["spl"] > 0.95
    assert agents["hjepa"]["predictor_calls_per_step"] > 0 and agents["flat"]["predictor_calls_per_step"] > 0
    assert (tmp_path / "report.md").stat().st_size > 0


@pytest.mark.slow
def test_gaussian_cem_with_the_geodesic_cost_on_the_true_simulator_reaches_the_goal(nav):
    """The continuous planner and the episode loop, told apart from any learned model:
    rollouts of the real MuJoCo model, the oracle's distance as the cost."""
    from hjepa.envs.pointmaze import PointMazeSim
    from hjepa.planning import planners

    sim, oracle = PointMazeSim("PointMaze_Medium-v3"), MazeOracle(MEDIUM)
    task = make_maze_tasks("PointMaze_Medium-v3", MEDIUM, 1, BINS, seed=0)[0]
    sim.set_state(task.start)
    sim.goal = np.array(task.goal)
    gen, mean, steps = torch.Generator().manual_seed(0), None, 0
    while not sim.success() and steps < 100:
        s0 = sim.state

        def cost(seqs, s0=s0):
            totals = []
            for seq in seqs.numpy():
                sim.set_state(s0[:2], s0[2:])
                totals.append(sum(oracle.distance(p, task.goal) for p in sim.rollout(seq)[1:, :2]))
            return torch.tensor(totals)

        plan = planners.gaussian_cem(cost, 2, 10, 32, 2, 6, init_mean=mean, generator=gen)
        mean = planners.shift_mean(plan.actions)
        sim.set_state(s0[:2], s0[2:])
        sim.step(plan.actions[0].numpy())
        steps += 1
    assert sim.success() and steps <= 2 * task.distance / 0.05  # within twice the top-speed time
